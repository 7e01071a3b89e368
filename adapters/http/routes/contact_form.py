"""The online contact form and its triage over HTTP.

Two audiences:

* anyone (:data:`public_router`): ``POST /contact-form`` with a topic, a message, contact
  data and documents as ``multipart/form-data``. It answers a receipt with a reference to
  quote; nothing else about the submission is ever shown to the public. Submissions go to
  the deployment's default office (``AKTE_DEFAULT_OFFICE_ID``).
* caseworkers (:data:`router`): list what waits for triage, read a submission and its
  files, link it to a case file (or open one from it), turn it into a procedure, answer or
  dismiss it, with ``If-Match``/``ETag`` on the submission like case files. A submission
  of an office the caller's role does not reach answers 404 exactly like none.

A submission is accepted completely or not at all: every file is checked (name, size, type
by its bytes) and every field validated before the first file is stored; the files are
stored before the submission is recorded (see :meth:`service_intake.Intake.submit_contact_form`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    Form,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.responses import JSONResponse

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, allow_public, may_in_office, require
from adapters.http.deps import ExpectedVersion, ServiceDep, SettingsDep
from adapters.http.problems import HttpProblem, problem_response
from adapters.http.route_helpers import POSITION_HEADER, etag
from adapters.http.schemas.cases import MAX_CODE, MAX_SHORT_TEXT, EventPublic, ProblemPublic
from adapters.http.schemas.intake import (
    CaseFromSubmissionPublic,
    ContactFormReceiptPublic,
    ContactPublic,
    ProcedureFromSubmissionPublic,
    ReceivedFilePublic,
    SubmissionCaseCreate,
    SubmissionCaseLinkCreate,
    SubmissionCaseOpenedPublic,
    SubmissionDismissalCreate,
    SubmissionProcedureCreate,
    SubmissionProcedurePublic,
    SubmissionPublic,
    SubmissionRecordedPublic,
    SubmissionReplyCreate,
    SubmissionReplyPublic,
    SubmissionSummaryPublic,
    SubmittedFilePublic,
)
from adapters.http.schemas.lawful import LawfulDate, Line, Text
from adapters.http.uploads import (
    CONTENT_RESPONSES,
    UPLOAD_PROBLEMS,
    incoming_upload,
    verified_content,
)
from domain.case_file import MAX_FREE_TEXT, MasterData
from domain.intake import MAX_KNOWN_FILE_NUMBER, ContactDetails, ContactSubmission
from domain.values import CONTACT_FORM_DOCUMENT_KIND, MAX_EMAIL
from service import AkteService
from service_common import PUBLIC_APPLICANT, ReferenceNotFound
from service_intake import SubmissionNotFound, SubmissionRecorded

FORM_PATH: Final = "/contact-form"
DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
DEFAULT_EVENT_PAGE: Final = 100
MAX_EVENT_PAGE: Final = 1000
MAX_RECEIPT: Final = 64

_EVENT_ENVELOPE_FIELDS: Final = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "by", "at"}
)

public_router = APIRouter(prefix=FORM_PATH, tags=["contact form"])
router = APIRouter(prefix="/contact-submissions", tags=["contact form: triage"])

PublicContactSender = Annotated[Principal | None, Depends(allow_public(Permission.CONTACT_SUBMIT))]
SubmissionReader = Annotated[Principal, Depends(require(Permission.CONTACT_READ))]
SubmissionTriager = Annotated[Principal, Depends(require(Permission.CONTACT_TRIAGE))]
SubmissionId = Annotated[UUID, Path(description="The submission's id (not the receipt).")]
FileNumber = Annotated[int, Path(ge=1, description="The file's number in the submission.")]


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemPublic, "description": description}


_ETAG = {
    "description": 'The submission\'s version as an entity tag, e.g. `"3"`.',
    "schema": {"type": "string"},
}
_UNAUTHENTICATED = _problem("The bearer token is missing, expired or invalid.")
_FORBIDDEN = _problem("Your roles do not grant the permission this route needs.")
_UNAVAILABLE = _problem("The event store is unavailable; nothing was recorded.")

SUBMIT_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    **UPLOAD_PROBLEMS,
    401: _problem("A bearer token was sent but is expired or invalid (none is needed)."),
}
READ_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _UNAUTHENTICATED,
    403: _FORBIDDEN,
    404: _problem("No such submission (or file of it) in the offices you may see."),
    422: _problem("A parameter is invalid; `errors` names it."),
    503: _UNAVAILABLE,
}
LIST_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    code: problem for code, problem in READ_PROBLEMS.items() if code != 404
}
WRITE_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: _problem("If-Match is not a single ETag."),
    401: _UNAUTHENTICATED,
    403: _FORBIDDEN,
    404: _problem("No such submission in your office."),
    409: _problem(
        "The submission's or the case file's state does not allow this (already triaged, "
        "not linked, case file closed, file number taken); nothing was recorded."
    ),
    412: _problem("If-Match is stale: the submission has changed; nothing was recorded."),
    422: _problem("The input is invalid; `errors` names the fields; nothing was recorded."),
    428: _problem("If-Match is missing."),
    503: _UNAVAILABLE,
}
WRITE_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    200: {"headers": {"ETag": _ETAG}},
    **WRITE_ERRORS,
}


def _acting_user(caller: Principal | None) -> str:
    """The token's subject if one was sent (e.g. the portal's account), else the public."""
    return caller.user_id if caller is not None else PUBLIC_APPLICANT


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


# ---------------------------------------------------------------- the public


@public_router.post("", status_code=status.HTTP_201_CREATED, responses=SUBMIT_PROBLEMS)
def submit_contact_form(
    caller: PublicContactSender,
    response: Response,
    service: ServiceDep,
    settings: SettingsDep,
    topic: Annotated[
        Line,
        Form(max_length=MAX_CODE, description="A contact topic code (`GET /catalogue`)."),
    ],
    message: Annotated[Text, Form(max_length=MAX_FREE_TEXT)],
    surname: Annotated[Line, Form(max_length=MAX_SHORT_TEXT)],
    given_names: Annotated[Line, Form(max_length=MAX_SHORT_TEXT)],
    email: Annotated[Line, Form(max_length=MAX_EMAIL)],
    date_of_birth: Annotated[LawfulDate | None, Form()] = None,
    file_number: Annotated[
        Line | None,
        Form(
            max_length=MAX_KNOWN_FILE_NUMBER,
            description="Your file number (Aktenzeichen) at the office, if you know it.",
        ),
    ] = None,
    files: Annotated[
        list[UploadFile] | None,
        File(
            description=(
                "Documents: PDF, JPEG or PNG (told by their content), each and all together "
                "within the office's limits."
            )
        ),
    ] = None,
) -> ContactFormReceiptPublic:
    """Send a message to the office, with documents; answers a receipt to quote.

    Accepted completely or not at all: a refused file or field stores and records nothing.
    """
    uploads = files or []
    if len(uploads) > settings.contact_form_max_files:
        raise HttpProblem(
            422,
            "too-many-files",
            f"a submission may bring at most {settings.contact_form_max_files} files",
        )
    incoming = [
        incoming_upload(
            upload,
            f"files.{index}",
            max_bytes=settings.contact_form_max_file_bytes,
            kind=CONTACT_FORM_DOCUMENT_KIND,
        )
        for index, upload in enumerate(uploads)
    ]
    total = sum(document.size_bytes for document in incoming)
    if total > settings.contact_form_max_total_bytes:
        raise HttpProblem(
            413,
            "submission-too-large",
            f"the files together are larger than {settings.contact_form_max_total_bytes} bytes",
        )
    recorded = service.intake.submit_contact_form(
        office_id=settings.default_office_id,
        topic=topic,
        message=message,
        contact=ContactDetails(
            surname=surname,
            given_names=given_names,
            email=email,
            date_of_birth=date_of_birth,
            file_number=file_number or None,
        ),
        files=incoming,
        by=_acting_user(caller),
    )
    submission = service.intake.get_submission(recorded.submission_id)
    _no_store(response)
    response.headers[POSITION_HEADER] = str(recorded.position)
    return ContactFormReceiptPublic(
        receipt=recorded.result,
        topic=submission.topic,
        submitted_at=submission.submitted_at,
        files=[
            ReceivedFilePublic(
                number=submitted.number,
                media_type=submitted.media_type,
                size_bytes=submitted.size_bytes,
                page_count=submitted.page_count,
            )
            for submitted in submission.files
        ],
    )


# --------------------------------------------------------------- caseworkers


def _suggested_case(service: AkteService, submission: ContactSubmission) -> UUID | None:
    file_number = submission.contact.file_number
    if not file_number:
        return None
    try:
        return service.find_case_by_reference(submission.office_id, file_number.strip().upper())
    except ReferenceNotFound:
        return None


def _submission_public(service: AkteService, submission: ContactSubmission) -> SubmissionPublic:
    return SubmissionPublic(
        id=submission.id,
        version=submission.version,
        office_id=submission.office_id,
        status=submission.status,
        topic=submission.topic,
        message=submission.message,
        contact=ContactPublic.model_validate(submission.contact),
        files=[
            SubmittedFilePublic(
                number=submitted.number,
                name=name,
                media_type=submitted.media_type,
                size_bytes=submitted.size_bytes,
                page_count=submitted.page_count,
                sha256=submitted.sha256,
            )
            for submitted, name in zip(submission.files, submission.file_names, strict=True)
        ],
        submitted_at=submission.submitted_at,
        suggested_case_id=_suggested_case(service, submission),
        case_id=UUID(submission.case_id) if submission.case_id else None,
        case_opened_from_submission=submission.case_opened_from_submission,
        procedure_number=submission.procedure_number,
        procedure_topic=submission.procedure_topic,
        procedure_kind=submission.procedure_kind,
        legal_basis=submission.legal_basis,
        document_numbers=list(submission.document_numbers),
        reply=(
            None
            if submission.reply is None
            else SubmissionReplyPublic.model_validate(submission.reply)
        ),
        dismissal_reason=submission.dismissal_reason,
        triaged_at=submission.triaged_at,
        triaged_by=submission.triaged_by,
    )


def _summary(submission: ContactSubmission) -> SubmissionSummaryPublic:
    return SubmissionSummaryPublic(
        id=submission.id,
        version=submission.version,
        office_id=submission.office_id,
        status=submission.status,
        topic=submission.topic,
        submitted_at=submission.submitted_at,
        file_count=len(submission.files),
        case_id=UUID(submission.case_id) if submission.case_id else None,
    )


def _recorded(response: Response, recorded: SubmissionRecorded[Any]) -> SubmissionRecordedPublic:
    response.headers["ETag"] = etag(recorded.version)
    response.headers[POSITION_HEADER] = str(recorded.position)
    return SubmissionRecordedPublic(submission_id=recorded.submission_id, version=recorded.version)


@router.get("", responses=LIST_PROBLEMS)
def list_submissions(
    request: Request,
    reader: SubmissionReader,
    response: Response,
    service: ServiceDep,
    receipt: Annotated[
        str | None,
        Query(
            max_length=MAX_RECEIPT,
            description=(
                "A receipt reference as the sender quotes it: finds that submission, "
                "triaged or not. Omitted: the submissions that wait for triage."
            ),
        ),
    ] = None,
    after: Annotated[
        int,
        Query(ge=0, description="The page cursor from the previous page's `Link`."),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> list[SubmissionSummaryPublic]:
    """Submissions waiting for triage in the offices you may see, oldest first.

    A page may hold fewer than `limit`; `Link: <...>; rel="next"` says more may follow.
    (Served by a scan of the log until the triage worklist read model exists.)
    """
    _no_store(response)
    if receipt is not None:
        try:
            found = service.intake.get_submission(
                service.intake.find_submission_by_receipt(receipt)
            )
        except SubmissionNotFound:
            return []
        visible = may_in_office(reader, Permission.CONTACT_READ, found.office_id)
        return [_summary(found)] if visible else []
    page = service.intake.list_untriaged_submissions(
        office_ids=None, after_position=after, limit=limit
    )
    if page.more and page.last_position is not None:
        next_page = request.url.include_query_params(after=page.last_position, limit=limit)
        response.headers["Link"] = f'<{next_page}>; rel="next"'
    return [
        _summary(submission)
        for submission in page.submissions
        if may_in_office(reader, Permission.CONTACT_READ, submission.office_id)
    ]


@router.get("/{submission_id}", responses={**READ_PROBLEMS, 200: {"headers": {"ETag": _ETAG}}})
def get_submission(
    submission_id: SubmissionId,
    reader: SubmissionReader,
    response: Response,
    service: ServiceDep,
) -> SubmissionPublic:
    """The submission as it is now; its ETag is the version to send as If-Match."""
    submission = service.intake.get_submission(submission_id)
    response.headers["ETag"] = etag(submission.version)
    _no_store(response)
    return _submission_public(service, submission)


@router.get("/{submission_id}/events", responses=READ_PROBLEMS)
def list_submission_events(
    submission_id: SubmissionId,
    request: Request,
    reader: SubmissionReader,
    response: Response,
    service: ServiceDep,
    after_version: Annotated[
        int, Query(ge=0, description="The version of the last event you have; omitted: from 1.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENT_PAGE)] = DEFAULT_EVENT_PAGE,
) -> list[EventPublic]:
    """The submission's events in order: who did what when, a page at a time."""
    events = service.intake.submission_events(
        submission_id, after_version=after_version, limit=limit
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


@router.get(
    "/{submission_id}/files/{file_number}/content",
    response_class=Response,
    responses={**READ_PROBLEMS, **CONTENT_RESPONSES},
)
def get_submitted_file(
    submission_id: SubmissionId,
    file_number: FileNumber,
    reader: SubmissionReader,
    service: ServiceDep,
) -> Response:
    """A file of the submission, verified against the hash and size it was sent with."""
    submitted = service.intake.get_submission(submission_id).file(file_number)
    return verified_content(
        service.intake.documents,
        sha256=submitted.sha256,
        size_bytes=submitted.size_bytes,
        owner=submission_id,
        media_type=submitted.media_type,
        download_name=f"submission-file-{file_number}",
    )


@router.post(
    "/{submission_id}/case-link",
    responses=WRITE_PROBLEMS,
    operation_id="link_submission_to_case_file",
)
def link_to_case_file(
    submission_id: SubmissionId,
    body: SubmissionCaseLinkCreate,
    response: Response,
    service: ServiceDep,
    principal: SubmissionTriager,
    expected_version: ExpectedVersion,
) -> SubmissionRecordedPublic:
    """Link the submission to the sender's existing case file (of the same office)."""
    recorded = service.intake.link_submission_to_case(
        submission_id,
        expected_version=expected_version,
        by=principal.user_id,
        case_id=body.case_id,
        at=body.at,
    )
    return _recorded(response, recorded)


@router.post(
    "/{submission_id}/case-file",
    status_code=status.HTTP_201_CREATED,
    responses={
        **WRITE_ERRORS,
        201: {
            "headers": {
                "ETag": _ETAG,
                "Location": {
                    "description": "The new case file.",
                    "schema": {"type": "string", "format": "uri"},
                },
            }
        },
    },
    operation_id="open_case_file_for_submission",
)
def open_case_file(
    submission_id: SubmissionId,
    body: SubmissionCaseCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: SubmissionTriager,
    expected_version: ExpectedVersion,
) -> SubmissionCaseOpenedPublic:
    """Open the sender's case file in the submission's office and link the submission."""
    submission = service.intake.get_submission(submission_id)
    date_of_birth = body.date_of_birth or submission.contact.date_of_birth
    if date_of_birth is None:
        raise HttpProblem(
            422, "invalid-value", "date_of_birth: required, as the sender did not give it"
        )
    recorded = service.intake.open_case_from_submission(
        submission_id,
        expected_version=expected_version,
        by=principal.user_id,
        master_data=MasterData(
            surname=body.surname or submission.contact.surname,
            given_names=body.given_names or submission.contact.given_names,
            date_of_birth=date_of_birth,
            nationality=body.nationality,
            passport_number=body.passport_number,
            address=body.address,
        ),
        reference=body.reference,
        at=body.at,
    )
    opened = recorded.result
    response.headers["ETag"] = etag(recorded.version)
    response.headers[POSITION_HEADER] = str(recorded.position)
    response.headers["Location"] = str(request.url_for("get_case", case_id=str(opened.case_id)))
    return SubmissionCaseOpenedPublic(
        submission_id=recorded.submission_id,
        version=recorded.version,
        case=CaseFromSubmissionPublic(
            case_id=opened.case_id, reference=opened.reference, version=opened.case_version
        ),
    )


@router.post(
    "/{submission_id}/procedure",
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE_ERRORS, 201: {"headers": {"ETag": _ETAG}}},
)
def turn_into_procedure(
    submission_id: SubmissionId,
    body: SubmissionProcedureCreate,
    response: Response,
    service: ServiceDep,
    principal: SubmissionTriager,
    expected_version: ExpectedVersion,
) -> SubmissionProcedurePublic:
    """Receive a procedure on the linked case file; the files become its documents.

    The procedure and documents count as received when the sender submitted.
    """
    recorded = service.intake.turn_submission_into_procedure(
        submission_id,
        expected_version=expected_version,
        by=principal.user_id,
        topic=body.topic,
        legal_basis=body.legal_basis,
        document_kind=body.document_kind or CONTACT_FORM_DOCUMENT_KIND,
        at=body.at,
    )
    made = recorded.result
    response.headers["ETag"] = etag(recorded.version)
    response.headers[POSITION_HEADER] = str(recorded.position)
    return SubmissionProcedurePublic(
        submission_id=recorded.submission_id,
        version=recorded.version,
        procedure=ProcedureFromSubmissionPublic(
            case_id=made.case_id,
            version=made.case_version,
            procedure_number=made.procedure_number,
            document_numbers=made.document_numbers,
        ),
    )


@router.post("/{submission_id}/reply", responses=WRITE_PROBLEMS)
def answer_submission(
    submission_id: SubmissionId,
    body: SubmissionReplyCreate,
    response: Response,
    service: ServiceDep,
    principal: SubmissionTriager,
    expected_version: ExpectedVersion,
) -> SubmissionRecordedPublic:
    """Record the office's answer to the sender (sent by e-mail); ends the triage."""
    recorded = service.intake.answer_submission(
        submission_id,
        expected_version=expected_version,
        by=principal.user_id,
        reply=body.reply,
        at=body.at,
    )
    return _recorded(response, recorded)


@router.post("/{submission_id}/dismissal", responses=WRITE_PROBLEMS)
def dismiss_submission(
    submission_id: SubmissionId,
    body: SubmissionDismissalCreate,
    response: Response,
    service: ServiceDep,
    principal: SubmissionTriager,
    expected_version: ExpectedVersion,
) -> SubmissionRecordedPublic:
    """Set the submission aside: spam, a duplicate, or withdrawn by the sender."""
    recorded = service.intake.dismiss_submission(
        submission_id,
        expected_version=expected_version,
        by=principal.user_id,
        reason=body.reason,
        note=body.note,
        at=body.at,
    )
    return _recorded(response, recorded)


# ------------------------------------------------------------------ problems


async def _intake_problem(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, SubmissionNotFound):
        return problem_response(404, "submission-not-found", str(error))
    raise error


def install_intake_problems(app: FastAPI) -> None:
    app.add_exception_handler(SubmissionNotFound, _intake_problem)
