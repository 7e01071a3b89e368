"""Access control: which role may do what, in which offices. The one place that decides.

Every route declares the permission it needs with a dependency made by :func:`require`
(or :func:`allow_public` for the few public routes). That dependency

1. authenticates the bearer token (``401`` without one or with a bad one; public routes
   accept anonymous callers but still refuse a bad token),
2. checks that one of the principal's roles grants the permission (``403``), and
3. for routes on one case file (``{case_id}`` in the path), checks that the case file
   lies in an office the granting role reaches; otherwise it answers ``404`` exactly as
   for a case file that does not exist, so other offices' files are not even revealed.

A process serving one office's shard (``AKTE_SHARD_OFFICE``, docs "Offices as
shards") first admits the caller to the shard (:func:`admit_to_shard`), right after
authentication: a token of another office is answered ``403`` (problem type
``other-office-shard``), as is a request naming another office in ``office_id``.

All of this happens before the route runs, hence before any command: a refused request
records nothing. Routes on one commitment declaration (``{declaration_id}`` in the path)
get the same office check as case files. The two routes without a case id choose their
office with this module's rules too: opening uses :func:`home_office`, the lookup by file number
:func:`may_in_office`. The office check is race-free because a case file's office never
changes (a transfer marks the file transferred; it stays in its office).

Roles (from the identity provider) and what they may:

=================  ==========================================================  =============
role               permissions                                                 offices
=================  ==========================================================  =============
caseworker         catalogue.read, case.open, case.read, case.history.read,    own office
                   case.write, commitment.read, commitment.write,
                   contact.read, contact.triage
team_lead          as caseworker, plus procedure.assign, report.read,          own office
                   report.analysis, retention.read, personal_data.erase
                   (requests an erasure; another person approves it)
auditor            catalogue.read, case.read, case.history.read,               all offices
                   case.history.personal.read, audit.trail.read, audit.verify,
                   commitment.read, contact.read, subject_access.read,
                   retention.read (no writes)
head_of_office     catalogue.read, report.read (aggregates only, no case),     own office
                   report.analysis (what-if, workload), audit.verify
data_protection_   catalogue.read, case.read, case.history.read,               all offices
officer            case.history.personal.read, audit.trail.read, audit.verify,
                   subject_access.read, retention.read, personal_data.erase,
                   personal_data.erase.approve (approves another's request)
anonymous          catalogue.read, operations.read, commitment.submit,         -
                   commitment.status.read, commitment.pay, payment.notify,
                   contact.submit
=================  ==========================================================  =============

Appointments: caseworkers and team leads also hold ``appointment.read`` and
``appointment.counter`` (the day's list, check-in, attended, no-show, cancel, re-type),
team leads ``appointment.configure`` (service points), auditors ``appointment.read``;
``appointment.book`` is public (booking, and one's own booking by its secret reference;
routes with ``{appointment_id}`` get the office check of case files).

The public commitment permissions let an applicant without an account submit a
commitment declaration and then, with the secret reference it returns, pay and follow it;
``payment.notify`` lets the payment platform report payments, its notifications being
authenticated by their signature instead of a token. ``contact.submit`` is the online
contact form; its submissions are read and triaged by the office they were filed in
(routes with ``{submission_id}`` get the same office check as case files).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Annotated, Final, cast
from uuid import UUID

from fastapi import Depends, Request
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute

from adapters.http.auth.identity import Principal, Role
from adapters.http.auth.tokens import IdentityProviderUnavailable, InvalidToken, TokenVerifier
from adapters.http.problems import HttpProblem
from adapters.settings import Settings
from service import AkteService
from service_appointment_mails import BookingNotFound
from service_common import CaseNotFound
from service_declarations import DeclarationNotFound
from service_intake import SubmissionNotFound

logger = logging.getLogger("akte.auth")

IDENTITY_PROVIDER_RETRY_AFTER_SECONDS: Final = 5
DEFAULT_CASE_OFFICE_CACHE_SIZE: Final = 100_000
"""A case id and an office code take about 200 bytes: 100,000 entries are some 20 MB."""


class Permission(StrEnum):
    CATALOGUE_READ = "catalogue.read"
    CASE_OPEN = "case.open"
    CASE_READ = "case.read"
    """A case file's current state and its parts."""
    CASE_HISTORY_READ = "case.history.read"
    """A case file's events: who did what when."""
    CASE_HISTORY_PERSONAL_READ = "case.history.personal.read"
    """The personal data in a case file's history (old names, reasons, notes), beside
    the facts that ``case.history.read`` shows."""
    AUDIT_TRAIL_READ = "audit.trail.read"
    """The audit trails across case files: actions by actor and day, the read-access log."""
    AUDIT_VERIFY = "audit.verify"
    """Recompute the event log's hash chains (tamper evidence): ids, positions and
    hashes, no personal data."""
    CASE_WRITE = "case.write"
    """Every recorded action on a case file except assigning procedures."""
    PROCEDURE_ASSIGN = "procedure.assign"
    REPORT_READ = "report.read"
    """Aggregate figures without personal data: the yearly report and the events behind
    each figure (file numbers and staff ids, no personal data)."""
    REPORT_ANALYSIS = "report.analysis"
    """Management analyses (file numbers and staff ids, no personal data): the what-if
    replay under another validity rule, and the workload per caseworker."""
    OPERATIONS_READ = "operations.read"
    """Liveness, readiness and metrics: states and counts for the platform, public."""
    COMMITMENT_SUBMIT = "commitment.submit"
    """Submit a commitment declaration online (public)."""
    COMMITMENT_STATUS_READ = "commitment.status.read"
    """The status of one's own declaration, with its secret reference (public)."""
    COMMITMENT_PAY = "commitment.pay"
    """Pay one's own declaration's fee, with its secret reference (public)."""
    PAYMENT_NOTIFY = "payment.notify"
    """The payment platform's signed notifications (public; the signature authenticates)."""
    COMMITMENT_READ = "commitment.read"
    """Commitment declarations with their personal data, and their events."""
    COMMITMENT_WRITE = "commitment.write"
    """Record the office's steps on a commitment declaration."""
    CONTACT_SUBMIT = "contact.submit"
    """Send the online contact form, with documents (public)."""
    CONTACT_READ = "contact.read"
    """Contact form submissions with their personal data, files and events."""
    CONTACT_TRIAGE = "contact.triage"
    """Link a submission to a case file, open a procedure from it, answer or dismiss it."""
    APPOINTMENT_BOOK = "appointment.book"
    """See the calendar, book, join the waitlist, and follow, confirm or cancel one's own
    booking with its secret reference (public)."""
    APPOINTMENT_READ = "appointment.read"
    """Appointments with their personal data, and the day's list at the counter."""
    APPOINTMENT_COUNTER = "appointment.counter"
    """Check in, attended, no-show, cancel, re-type, link to a case file."""
    APPOINTMENT_CONFIGURE = "appointment.configure"
    """Define service points: calendar, appointment types, closed days."""
    PERSONAL_DATA_ERASE = "personal_data.erase"
    """Request the erasure of a person's data (crypto-shredding), see the office's
    requests and withdraw one; the erasure happens only once another person approves it
    (``personal_data.erase.approve``)."""
    PERSONAL_DATA_ERASE_APPROVE = "personal_data.erase.approve"
    """Approve another person's erasure request with one's own token, which carries the
    erasure out (four eyes: never one's own request)."""
    SUBJECT_ACCESS_READ = "subject_access.read"
    """Export everything held about one person, decrypted (Art. 15 DSGVO)."""
    RETENTION_READ = "retention.read"
    """The worklist of case files whose retention period has run out (file numbers and
    dates, no personal data)."""


class Reach(Enum):
    OWN_OFFICE = "own office"
    ALL_OFFICES = "all offices"


@dataclass(frozen=True)
class Grant:
    permissions: frozenset[Permission]
    reach: Reach


_CASEWORK: Final = frozenset(
    {
        Permission.CATALOGUE_READ,
        Permission.CASE_OPEN,
        Permission.CASE_READ,
        Permission.CASE_HISTORY_READ,
        Permission.CASE_WRITE,
        Permission.COMMITMENT_READ,
        Permission.COMMITMENT_WRITE,
        Permission.CONTACT_READ,
        Permission.CONTACT_TRIAGE,
        Permission.APPOINTMENT_READ,
        Permission.APPOINTMENT_COUNTER,
    }
)

ROLE_GRANTS: Final[Mapping[Role, Grant]] = {
    Role.CASEWORKER: Grant(_CASEWORK, Reach.OWN_OFFICE),
    Role.TEAM_LEAD: Grant(
        _CASEWORK
        | {
            Permission.PROCEDURE_ASSIGN,
            Permission.REPORT_READ,
            Permission.REPORT_ANALYSIS,
            Permission.APPOINTMENT_CONFIGURE,
            Permission.RETENTION_READ,
            Permission.PERSONAL_DATA_ERASE,
        },
        Reach.OWN_OFFICE,
    ),
    # Auditors of the deployment check every office's files; they change nothing.
    Role.AUDITOR: Grant(
        frozenset(
            {
                Permission.CATALOGUE_READ,
                Permission.CASE_READ,
                Permission.CASE_HISTORY_READ,
                Permission.CASE_HISTORY_PERSONAL_READ,
                Permission.AUDIT_TRAIL_READ,
                Permission.AUDIT_VERIFY,
                Permission.REPORT_READ,
                Permission.COMMITMENT_READ,
                Permission.CONTACT_READ,
                Permission.APPOINTMENT_READ,
                Permission.SUBJECT_ACCESS_READ,
                Permission.RETENTION_READ,
            }
        ),
        Reach.ALL_OFFICES,
    ),
    # The deployment's data protection officer: subject access and erasure in every
    # office; reads files to answer requests, records nothing else on them.
    Role.DATA_PROTECTION_OFFICER: Grant(
        frozenset(
            {
                Permission.CATALOGUE_READ,
                Permission.CASE_READ,
                Permission.CASE_HISTORY_READ,
                Permission.CASE_HISTORY_PERSONAL_READ,
                Permission.AUDIT_TRAIL_READ,
                Permission.AUDIT_VERIFY,
                Permission.SUBJECT_ACCESS_READ,
                Permission.RETENTION_READ,
                Permission.PERSONAL_DATA_ERASE,
                Permission.PERSONAL_DATA_ERASE_APPROVE,
            }
        ),
        Reach.ALL_OFFICES,
    ),
    Role.HEAD_OF_OFFICE: Grant(
        frozenset(
            {
                Permission.CATALOGUE_READ,
                Permission.REPORT_READ,
                Permission.REPORT_ANALYSIS,
                Permission.AUDIT_VERIFY,
            }
        ),
        Reach.OWN_OFFICE,
    ),
}

PUBLIC_PERMISSIONS: Final = frozenset(
    {
        Permission.CATALOGUE_READ,
        Permission.OPERATIONS_READ,
        Permission.COMMITMENT_SUBMIT,
        Permission.COMMITMENT_STATUS_READ,
        Permission.COMMITMENT_PAY,
        Permission.PAYMENT_NOTIFY,
        Permission.CONTACT_SUBMIT,
        Permission.APPOINTMENT_BOOK,
    }
)
"""What anyone may do without a token."""


def may(principal: Principal, permission: Permission) -> bool:
    """Whether one of the principal's roles grants the permission, in some office."""
    return any(permission in ROLE_GRANTS[role].permissions for role in principal.roles)


def may_in_office(principal: Principal, permission: Permission, office_id: str) -> bool:
    """Whether one of the principal's roles grants the permission in this office."""
    for role in principal.roles:
        grant = ROLE_GRANTS[role]
        if permission not in grant.permissions:
            continue
        if grant.reach is Reach.ALL_OFFICES or office_id == principal.office_id:
            return True
    return False


OFFICE_PARAMETER: Final = "office_id"
"""The name every route gives a path or query parameter that names an office."""


def admit_to_shard(principal: Principal, shard_office: str) -> Principal:
    """Who may use the API of a process that holds only ``shard_office``'s data.

    The shard's own staff are admitted as they are. A principal whose every role reaches
    all offices (auditors, data protection officers: deployment-wide, with or without an
    office of their own) is admitted too, as if working in the shard's office, so that
    "your office" defaults (worklists, lookups by file number, trails) mean the one
    office this process holds; such roles record nothing in an office of their own.
    Anyone else is refused with ``403``: their office's case files, worklists and keys
    live in another shard, and a role bound to an office would otherwise act here for
    that office (an office-bound principal without an office can act nowhere).

    ``403``, not ``421 Misdirected Request``: the proxy sent the request to the right
    server for its URL; it is this caller that may not use this office's server, and
    HTTP clients may retry a ``421`` on a new connection, which would only repeat it.
    """
    if principal.office_id == shard_office:
        return principal
    if principal.roles and all(
        ROLE_GRANTS[role].reach is Reach.ALL_OFFICES for role in principal.roles
    ):
        return dataclasses.replace(principal, office_id=shard_office)
    raise _other_office_shard(shard_office)


def _other_office_shard(shard_office: str) -> HttpProblem:
    # Names the shard's office only (a code, not personal data), never the caller's.
    return HttpProblem(
        403,
        "other-office-shard",
        f"this server holds only office {shard_office}: use your own office's address",
    )


def _refuse_other_offices_named(request: Request, shard_office: str) -> None:
    """Routes taking ``office_id`` would find nothing of another office here, silently."""
    named = list(request.query_params.getlist(OFFICE_PARAMETER))
    in_path = request.path_params.get(OFFICE_PARAMETER)
    if in_path is not None:
        named.append(str(in_path))
    if any(office_id != shard_office for office_id in named):
        raise _other_office_shard(shard_office)


def _shard_office(request: Request) -> str | None:
    settings = cast(Settings | None, getattr(request.app.state, "settings", None))
    return None if settings is None else settings.shard_office


def _admitted(request: Request, principal: Principal) -> Principal:
    """The principal as this process sees it; on a shard, after :func:`admit_to_shard`."""
    shard_office = _shard_office(request)
    if shard_office is None:
        return principal
    admitted = admit_to_shard(principal, shard_office)
    _refuse_other_offices_named(request, shard_office)
    return admitted


def _admitted_if_any(request: Request, principal: Principal | None) -> Principal | None:
    """As :func:`_admitted`; anonymous callers of public routes act for the shard's office
    (the default office) anyway, so only the offices they name are checked."""
    if principal is not None:
        return _admitted(request, principal)
    shard_office = _shard_office(request)
    if shard_office is not None:
        _refuse_other_offices_named(request, shard_office)
    return None


def home_office(principal: Principal) -> str:
    """The office the principal works in; new case files are opened there."""
    if principal.office_id is None:
        raise HttpProblem(403, "forbidden", "your account is not assigned to an office")
    return principal.office_id


# --------------------------------------------------------------- dependencies

BEARER_SCHEME: Final = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description=(
        "An access token of the office's identity provider (OpenID Connect), or in local "
        "mode one printed by `akte token USER`."
    ),
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)]


class Access:
    """A route's declared access: the permission it needs."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.permission.value!r})"


class RequirePermission(Access):
    """Authenticates, checks the permission and, on one case file, its office."""

    def __call__(self, request: Request, credentials: BearerCredentials) -> Principal:
        # A plain function: a first token with a new key fetches the keys (blocking I/O),
        # so FastAPI runs it in the thread pool, like the routes themselves.
        authenticated = _authenticate(request, credentials)
        if authenticated is None:
            raise HttpProblem(
                401,
                "unauthenticated",
                "this request needs a bearer token: Authorization: Bearer <access token>",
                headers={"WWW-Authenticate": 'Bearer realm="akte"'},
            )
        principal = _admitted(request, authenticated)
        if not may(principal, self.permission):
            raise HttpProblem(403, "forbidden", f"your roles do not grant {self.permission.value}")
        case_id = _case_id_in_path(request)
        if case_id is not None:
            office_id = _case_offices(request).office_of(case_id)
            if not may_in_office(principal, self.permission, office_id):
                raise CaseNotFound(case_id)
        declaration_id = _uuid_in_path(request, "declaration_id")
        if declaration_id is not None:
            office_id = _declaration_offices(request).office_of(declaration_id)
            if not may_in_office(principal, self.permission, office_id):
                raise DeclarationNotFound(declaration_id)
        submission_id = _uuid_in_path(request, "submission_id")
        if submission_id is not None:
            office_id = _submission_offices(request).office_of(submission_id)
            if not may_in_office(principal, self.permission, office_id):
                raise SubmissionNotFound(submission_id)
        appointment_id = _uuid_in_path(request, "appointment_id")
        if appointment_id is not None:
            office_id = _appointment_offices(request).office_of(appointment_id)
            if not may_in_office(principal, self.permission, office_id):
                raise BookingNotFound(appointment_id)
        # Whom the read-access log names (adapters/http/read_log.py).
        request.state.principal = principal
        return principal


class AllowPublic(Access):
    """Anyone may call the route; a token, if sent, must still be valid."""

    def __call__(self, request: Request, credentials: BearerCredentials) -> Principal | None:
        return _admitted_if_any(request, _authenticate(request, credentials))


def require(permission: Permission) -> RequirePermission:
    if permission in PUBLIC_PERMISSIONS:
        msg = f"{permission.value} is public: declare it with allow_public"
        raise ValueError(msg)
    return RequirePermission(permission)


def allow_public(permission: Permission) -> AllowPublic:
    if permission not in PUBLIC_PERMISSIONS:
        msg = f"{permission.value} is not public"
        raise ValueError(msg)
    return AllowPublic(permission)


@dataclass(frozen=True)
class RouteAccess:
    path: str
    methods: frozenset[str]
    access: Access | None


def route_accesses(routes: Sequence[BaseRoute]) -> list[RouteAccess]:
    """Every API route of an app (through included routers) with the access it declares."""
    found = []
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            found.append(
                RouteAccess(
                    path=context.path_format or route.path_format,
                    methods=frozenset(context.methods or route.methods or ()),
                    access=declared_access(route),
                )
            )
    return found


def declared_access(route: APIRoute) -> Access | None:
    """The access a route declares through its dependencies, if any."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Access):
            return dependant.call
        pending.extend(dependant.dependencies)
    return None


def _authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal | None:
    if credentials is None:
        return None
    verifier = cast(TokenVerifier, request.app.state.token_verifier)
    try:
        return verifier.verify(credentials.credentials)
    except InvalidToken as error:
        logger.info(
            "bearer token refused during %s %s: %s",
            request.method,
            _route_template(request),
            error.reason,
        )
        raise HttpProblem(
            401,
            "unauthenticated",
            error.reason,
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="akte", error="invalid_token", '
                    f'error_description="{error.reason}"'
                )
            },
        ) from None
    except IdentityProviderUnavailable:
        logger.warning("identity provider's signing keys unavailable")
        raise HttpProblem(
            503,
            "identity-provider-unavailable",
            "the identity provider's signing keys cannot be fetched; try again later",
            headers={"Retry-After": str(IDENTITY_PROVIDER_RETRY_AFTER_SECONDS)},
        ) from None


def _route_template(request: Request) -> str:
    return str(getattr(request.scope.get("route"), "path", "<no route>"))


def _case_id_in_path(request: Request) -> UUID | None:
    """The case file the route works on; a malformed id is left to the route's validation."""
    raw = request.path_params.get("case_id")
    if raw is None:
        return None
    try:
        return UUID(str(raw))
    except ValueError:
        return None


def _case_offices(request: Request) -> CaseOffices:
    return cast(CaseOffices, request.app.state.case_offices)


def _uuid_in_path(request: Request, name: str) -> UUID | None:
    """The id the route works on; a malformed one is left to the route's validation."""
    raw = request.path_params.get(name)
    if raw is None:
        return None
    try:
        return UUID(str(raw))
    except ValueError:
        return None


def _declaration_offices(request: Request) -> DeclarationOffices:
    return cast(DeclarationOffices, request.app.state.declaration_offices)


def _submission_offices(request: Request) -> SubmissionOffices:
    return cast(SubmissionOffices, request.app.state.submission_offices)


def _appointment_offices(request: Request) -> AppointmentOffices:
    return cast(AppointmentOffices, request.app.state.appointment_offices)


class _OfficeCache:
    """Which office each aggregate belongs to, remembered once looked up (LRU).

    An office never changes, so an entry never goes stale and needs no invalidation.
    Only aggregates that exist are remembered: ``lookup`` raises for unknown ids, so
    made-up ids cannot fill the cache.
    """

    def __init__(self, lookup: Callable[[UUID], str], *, maxsize: int) -> None:
        self._lookup = lookup
        self._maxsize = maxsize
        self._offices: OrderedDict[UUID, str] = OrderedDict()
        self._lock = threading.Lock()

    def office_of(self, aggregate_id: UUID) -> str:
        with self._lock:
            office_id = self._offices.get(aggregate_id)
            if office_id is not None:
                self._offices.move_to_end(aggregate_id)
                return office_id
        office_id = self._lookup(aggregate_id)
        with self._lock:
            self._offices[aggregate_id] = office_id
            while len(self._offices) > self._maxsize:
                self._offices.popitem(last=False)
        return office_id


class CaseOffices(_OfficeCache):
    """Case files' offices; :meth:`office_of` raises :class:`service.CaseNotFound`."""

    def __init__(
        self, service: AkteService, *, maxsize: int = DEFAULT_CASE_OFFICE_CACHE_SIZE
    ) -> None:
        super().__init__(lambda case_id: service.get_case(case_id).office_id, maxsize=maxsize)


class DeclarationOffices(_OfficeCache):
    """Commitment declarations' offices; raises :class:`service.DeclarationNotFound`."""

    def __init__(
        self, service: AkteService, *, maxsize: int = DEFAULT_CASE_OFFICE_CACHE_SIZE
    ) -> None:
        super().__init__(
            lambda declaration_id: service.declarations.get_declaration(declaration_id).office_id,
            maxsize=maxsize,
        )


class SubmissionOffices(_OfficeCache):
    """Contact submissions' offices; raises :class:`service.SubmissionNotFound`."""

    def __init__(
        self, service: AkteService, *, maxsize: int = DEFAULT_CASE_OFFICE_CACHE_SIZE
    ) -> None:
        super().__init__(
            lambda submission_id: service.intake.get_submission(submission_id).office_id,
            maxsize=maxsize,
        )


class AppointmentOffices(_OfficeCache):
    """Appointments' offices; raises :class:`service_appointment_mails.BookingNotFound`."""

    def __init__(
        self, service: AkteService, *, maxsize: int = DEFAULT_CASE_OFFICE_CACHE_SIZE
    ) -> None:
        super().__init__(
            lambda appointment_id: service.appointments.get_appointment(appointment_id).office_id,
            maxsize=maxsize,
        )
