"""The contact form page: write to the office about a topic, with documents.

``GET /contact`` shows the form: the catalogue's contact topics in plain words, name,
e-mail and message, and up to the office's number of files (PDF, JPEG, PNG) with the
limits stated on the page (and checked before sending by ``static/contact/files.js``,
where scripts run). ``POST /contact`` (``multipart/form-data``) submits through the same
service command as ``POST /contact-form``, with the same checks of every file by its
bytes; success is a redirect to ``GET /contact/receipt/{receipt}``, the receipt number in
large type. A refused submission shows the form again with everything typed kept, and
names the files to choose again (a browser cannot keep chosen files). The receipt page
shows only a receipt that was given (it is looked up, by its hash, and counts against the
look-ups' rate): an address that holds no receipt number, or one nothing was received
under, shows a page that says what to check (``404``), in the visitor's language.

The form's key (its hidden first field, :mod:`adapters.http.idempotency`) makes a double
click one submission; the second sending may arrive while the first is still answering.
It then gets the first sending's receipt too, as a retry would: the receipt recorded with
the key, or the first answer once stored (waited for, :data:`IN_FLIGHT_WAIT_SECONDS`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Final

import anyio
from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, allow_public
from adapters.http.deps import ServiceDep, SettingsDep
from adapters.http.idempotency import claim_for
from adapters.http.pages.languages import Language, chosen_language, languages_of
from adapters.http.pages.rendering import render
from adapters.http.pages.translations import translations_for
from adapters.http.problems import HttpProblem
from adapters.http.uploads import incoming_upload
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings
from domain.case_file import MAX_FREE_TEXT
from domain.errors import InvalidValue
from domain.intake import (
    MAX_KNOWN_FILE_NUMBER,
    MAX_SUBMITTED_FILES,
    ContactDetails,
    canonical_receipt,
    format_receipt,
)
from domain.values import CONTACT_FORM_DOCUMENT_KIND, MAX_EMAIL, require_email
from service import AkteService
from service_common import PUBLIC_APPLICANT
from service_idempotency import (
    IN_FLIGHT,
    AlreadyRecorded,
    IdempotencyClaim,
    current_claim,
    idempotency_claim,
)
from service_intake import IncomingDocument, SubmissionNotFound
from service_ports import KeyRecord

router = APIRouter(include_in_schema=False)

CONTACT_PATH: Final = "/contact"
RECEIPT_PATH: Final = "/contact/receipt/{receipt}"
MODULE: Final = "contact"
TEXT_FIELDS: Final = (
    "topic",
    "message",
    "surname",
    "given_names",
    "email",
    "date_of_birth",
    "file_number",
)
MAX_SHORT_FIELD: Final = 200
ACCEPTED_TYPES: Final = ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"
IN_FLIGHT_WAIT_SECONDS: Final = 5.0
"""How long a second sending of the form waits for the first one's answer (a double
click: the first is committed and answering) before it says so on a page of its own."""
IN_FLIGHT_POLL_SECONDS: Final = 0.1

Sender = Annotated[Principal | None, Depends(allow_public(Permission.CONTACT_SUBMIT))]


def N_(message: str) -> str:  # noqa: N802 - the gettext marker's conventional name
    """Marks a message for extraction; translated when the page is rendered."""
    return message


PLAIN_TOPICS: Final = {
    "extend_residence_permit": N_("My residence permit runs out and I want to extend it"),
    "first_title_after_entry": N_("I have just arrived and need my first residence permit"),
    "change_of_purpose": N_("I want to stay for another purpose (for example work after study)"),
    "transfer_eat_new_passport": N_("I have a new passport and my residence card must move to it"),
    "fiction_certificate": N_("My permit runs out very soon and I need a paper meanwhile"),
    "commitment_declaration": N_("I want to invite a visitor and pay for their stay"),
    "settlement_permit": N_("I want to stay for good (settlement permit)"),
    "blue_card": N_("EU Blue Card for qualified work"),
    "family_reunion": N_("I want to live with my family in Germany"),
    "child_born_in_germany": N_("My child was born in Germany"),
    "employer_change": N_("I am changing my employer or my work"),
    "lost_document": N_("I lost my residence card or passport"),
    "change_of_address": N_("I moved here or within the district"),
    "residence_obligation_change": N_("I want to live in another place (residence condition)"),
    "eat_pickup": N_("I want to collect my residence card"),
    "extend_gestattung_duldung": N_("Asylum or toleration papers (Gestattung, Duldung)"),
    "humanitarian_title_after_bamf": N_("The federal office (BAMF) has granted me protection"),
    "temporary_protection_ukraine": N_("I fled the war in Ukraine"),
    "job_search_after_studies": N_("I finished studies or training and am looking for work"),
    "student_permit": N_("I study or want to study in Germany"),
    "non_expiry_certificate": N_("I will be abroad for a long time"),
    "visa_extension": N_("My visa runs out or I cannot leave in time"),
    "integration_course": N_("Integration course"),
    "naturalisation_inquiry": N_("I want to become a German citizen"),
    "general_question": N_("Something else, or how far my matter has got"),
}
"""Each topic as a person would say it; the catalogue's own label is shown beside it."""

# Refusals, in the page's words.
_REQUIRED: Final = {
    "topic": N_("Choose what your message is about."),
    "message": N_("Write your message to us."),
    "surname": N_("Enter your family name."),
    "given_names": N_("Enter your given names."),
    "email": N_("Enter your e-mail address, so that we can answer you."),
}
_INVALID: Final = {
    "topic": N_("Choose one of the topics listed."),
    "message": N_("Your message is too long or holds characters we cannot store."),
    "surname": N_("Please shorten your family name or leave out unusual characters."),
    "given_names": N_("Please shorten your given names or leave out unusual characters."),
    "email": N_("Write your e-mail address in the form name@example.org."),
    "date_of_birth": N_("Enter a date of birth between 1900 and today, or leave it empty."),
    "file_number": N_("Enter the file number as on our letters, or leave it empty."),
}
_TOO_MANY_FILES: Final = N_("Choose at most %(count)s files.")
_TOTAL_TOO_LARGE: Final = N_("All files together are larger than %(size)s. Leave some out.")
_FILE_PROBLEMS: Final = {
    "file-too-large": N_("%(name)s is larger than %(size)s."),
    "unsupported-file-type": N_("%(name)s is not a PDF, JPEG or PNG file."),
    "empty-file": N_("%(name)s is empty."),
}
_FILE_UNREADABLE: Final = N_("%(name)s cannot be read; save it again as PDF, JPEG or PNG.")
_FILE_NAME: Final = N_("The name of %(name)s is not allowed; rename the file and choose it again.")


@dataclass(frozen=True)
class Limits:
    """What the server takes: stated on the page and checked by its script."""

    max_files: int
    max_file_bytes: int
    max_total_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.contact_form_max_files,
            settings.contact_form_max_file_bytes,
            settings.contact_form_max_total_bytes,
        )


@dataclass
class Refusal:
    """Why the form comes back: messages by field (in the page's language)."""

    errors: dict[str, str] = field(default_factory=dict)
    file_errors: list[str] = field(default_factory=list)


def megabytes(size: int, language: Language) -> str:
    """A size as people read it: ``10 MB``, ``2,5 MB``, ``64 KB``."""
    if size < 1_048_576:
        return f"{format_decimal(size // 1024, locale=language.locale)} KB"
    return f"{format_decimal(round(size / 1_048_576, 1), locale=language.locale)} MB"


def _translate(language: Language, message: str, **values: object) -> str:
    text = translations_for(language.code).gettext(message)
    return text % values if values else text


def topics(language: Language) -> list[tuple[str, str, str | None]]:
    """The catalogue's topics as radio options: (code, plain label, official label)."""
    options: list[tuple[str, str, str | None]] = []
    for topic in load_catalogue().contact_topics.values():
        official = topic.label_de if language.code == "de" else topic.label
        plain = PLAIN_TOPICS.get(topic.code)
        if plain is None:
            options.append((topic.code, official, None))
        else:
            options.append((topic.code, _translate(language, plain), official))
    return options


def _form_page(
    request: Request,
    settings: Settings,
    *,
    values: Mapping[str, str],
    refusal: Refusal | None = None,
    rechoose: list[str] | None = None,
) -> HTMLResponse:
    offered = languages_of(MODULE)
    language = chosen_language(request, offered)
    limits = Limits.of(settings)
    return render(
        request,
        "contact/form.html.j2",
        {
            "topics": topics(language),
            "values": values,
            "errors": refusal.errors if refusal else {},
            "file_errors": refusal.file_errors if refusal else [],
            "rechoose": rechoose or [],
            "limits": limits,
            "max_file_size": megabytes(limits.max_file_bytes, language),
            "max_total_size": megabytes(limits.max_total_bytes, language),
            "accepted_types": ACCEPTED_TYPES,
            "max_message": MAX_FREE_TEXT,
            "max_short": MAX_SHORT_FIELD,
            "max_email": MAX_EMAIL,
            "max_file_number": MAX_KNOWN_FILE_NUMBER,
        },
        status_code=422 if refusal else 200,
        offered=offered,
    )


@router.get(CONTACT_PATH, response_class=HTMLResponse)
def contact_form(request: Request, sender: Sender, settings: SettingsDep) -> HTMLResponse:
    return _form_page(request, settings, values={})


def _chosen_files(form: FormData) -> list[UploadFile]:
    # A file input left empty still sends one part, without a name or bytes.
    return [
        UploadFile(item.file, size=item.size, filename=item.filename, headers=item.headers)
        for item in form.getlist("files")
        if isinstance(item, StarletteUpload) and (item.filename or item.size)
    ]


def _text_values(form: FormData) -> dict[str, str]:
    values = {}
    for name in TEXT_FIELDS:
        value = form.get(name)
        # A browser sends a line break as CR LF but counts it as one character against the
        # field's maxlength: a message as long as the page allows must not come back as
        # too long. Stored with "\n", as typed.
        text = value if isinstance(value, str) else ""
        values[name] = text.replace("\r\n", "\n").replace("\r", "\n")
    return values


def _checked_fields(values: Mapping[str, str], language: Language) -> dict[str, str]:
    """What the form itself can tell at once: required fields, the shape of the date."""
    errors = {
        name: _translate(language, message)
        for name, message in _REQUIRED.items()
        if not values[name].strip()
    }
    if values["email"].strip():
        try:
            require_email("email", values["email"].strip())
        except InvalidValue:
            errors["email"] = _translate(language, _INVALID["email"])
    if values["date_of_birth"]:
        try:
            date.fromisoformat(values["date_of_birth"])
        except ValueError:
            errors["date_of_birth"] = _translate(language, _INVALID["date_of_birth"])
    return errors


def _checked_files(
    uploads: list[UploadFile], limits: Limits, language: Language
) -> tuple[list[IncomingDocument], Refusal]:
    """Every file checked as the API checks it (name, size, bytes), each refusal named."""
    refusal = Refusal()
    if len(uploads) > limits.max_files:
        refusal.errors["files"] = _translate(language, _TOO_MANY_FILES, count=limits.max_files)
        return [], refusal
    incoming = []
    for index, upload in enumerate(uploads):
        name = upload.filename or f"#{index + 1}"
        try:
            incoming.append(
                incoming_upload(
                    upload,
                    f"files.{index}",
                    max_bytes=limits.max_file_bytes,
                    kind=CONTACT_FORM_DOCUMENT_KIND,
                )
            )
        except HttpProblem as problem:
            message = _FILE_PROBLEMS.get(problem.code, _FILE_UNREADABLE)
            size = megabytes(limits.max_file_bytes, language)
            refusal.file_errors.append(_translate(language, message, name=name, size=size))
        except InvalidValue:
            refusal.file_errors.append(_translate(language, _FILE_NAME, name=name))
    total = sum(document.size_bytes for document in incoming)
    if not refusal.file_errors and total > limits.max_total_bytes:
        size = megabytes(limits.max_total_bytes, language)
        refusal.errors["files"] = _translate(language, _TOTAL_TOO_LARGE, size=size)
    if refusal.file_errors:
        refusal.errors["files"] = refusal.file_errors[0]
    return incoming, refusal


def _submit(
    service: AkteService,
    settings: Settings,
    values: Mapping[str, str],
    incoming: list[IncomingDocument],
    by: str,
) -> str:
    recorded = service.intake.submit_contact_form(
        office_id=settings.default_office_id,
        topic=values["topic"],
        message=values["message"],
        contact=ContactDetails(
            surname=values["surname"],
            given_names=values["given_names"],
            email=values["email"].strip(),
            date_of_birth=(
                date.fromisoformat(values["date_of_birth"]) if values["date_of_birth"] else None
            ),
            file_number=values["file_number"].strip() or None,
        ),
        files=incoming,
        by=by,
    )
    return recorded.result


def _receipt_redirect(request: Request, receipt: str) -> RedirectResponse:
    return RedirectResponse(
        request.app.url_path_for("contact_receipt", receipt=receipt), status_code=303
    )


def _asked_again(service: AkteService, claim: IdempotencyClaim, by: str) -> str | KeyRecord | None:
    """What a retry of this sending would be told now: the receipt recorded with its key
    (while the first answer is not stored), else the key's record (with the first answer
    once it is stored); None: the key is not found (any more)."""
    # A claim of its own: the sending's claim has checked its key and asks no more.
    with idempotency_claim(claim_for(claim.key, claim.request_hash)):
        try:
            replayed = service.writes.replayed(by)
        except AlreadyRecorded as found:
            return found.record
    return str(replayed.result) if replayed is not None else None


async def _answer_of_first_sending(
    request: Request, service: AkteService, found: AlreadyRecorded, by: str
) -> Response:
    """The answer to a sending whose key the first sending recorded while this one ran (a
    double click): the first sending's receipt, as a retry with the key would get it.

    Raises ``found`` again (the idempotency handler then replays the first answer, or
    says what the key's row knows) unless that first answer is still being given.
    """
    claim = current_claim()
    record = found.record
    if (
        claim is None
        or record.answer is not None
        or service.clock() - record.recorded_at >= IN_FLIGHT
    ):
        raise found
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while True:
        asked = await run_in_threadpool(_asked_again, service, claim, by)
        if isinstance(asked, str):
            return _receipt_redirect(request, asked)
        if asked is not None and asked.answer is not None:
            raise AlreadyRecorded(asked)  # replayed as it was stored
        if time.monotonic() >= deadline:
            # Recorded (the key is recorded only with the submission), so it arrived; only
            # its receipt number cannot be told on this sending.
            return render(
                request,
                "contact/receipt.html.j2",
                {"receipt": None},
                status_code=409,
                offered=languages_of(MODULE),
            )
        await anyio.sleep(IN_FLIGHT_POLL_SECONDS)


@router.post(CONTACT_PATH, response_class=HTMLResponse, response_model=None)
async def send_contact_form(
    request: Request, sender: Sender, service: ServiceDep, settings: SettingsDep
) -> Response:
    language = chosen_language(request, languages_of(MODULE))
    limits = Limits.of(settings)
    # Starlette's own cap on parts; the office's limit is checked below, with a message.
    async with request.form(max_files=MAX_SUBMITTED_FILES, max_fields=50) as form:
        values = _text_values(form)
        uploads = _chosen_files(form)
        names = [upload.filename or f"#{index + 1}" for index, upload in enumerate(uploads)]
        errors = _checked_fields(values, language)
        incoming, refusal = await run_in_threadpool(_checked_files, uploads, limits, language)
        refusal.errors = errors | refusal.errors
        if any(isinstance(item, str) and item for item in form.getlist("files")):
            # A part with a file's content but no plain file name (``filename*=`` only)
            # arrives as text: refused, not dropped while the rest is received.
            refusal.errors["files"] = _translate(language, _FILE_UNREADABLE, name="")
        if not refusal.errors:
            by = sender.user_id if sender is not None else PUBLIC_APPLICANT
            try:
                receipt = await run_in_threadpool(_submit, service, settings, values, incoming, by)
            except AlreadyRecorded as found:
                return await _answer_of_first_sending(request, service, found, by)
            except InvalidValue as refused:
                name = refused.field.split(".")[0]
                message = _INVALID.get(name)
                if name == "files" or message is None:
                    refusal.errors["files"] = _translate(language, _FILE_UNREADABLE, name="")
                else:
                    refusal.errors[name] = _translate(language, message)
            else:
                return _receipt_redirect(request, receipt)
    return _form_page(request, settings, values=values, refusal=refusal, rechoose=names)


@router.get(RECEIPT_PATH, response_class=HTMLResponse)
def contact_receipt(
    request: Request, receipt: str, sender: Sender, service: ServiceDep
) -> HTMLResponse:
    """The receipt as the redirect named it, if a submission was received under it (found
    by the receipt's hash); nothing else of the submission is looked up or shown."""
    symbols = canonical_receipt(receipt)
    try:
        if symbols is None:
            raise SubmissionNotFound
        service.intake.find_submission_by_receipt(symbols)
    except SubmissionNotFound:
        # A made-up or mistyped number must not be confirmed as arrived.
        return render(
            request, "contact/not_found.html.j2", status_code=404, offered=languages_of(MODULE)
        )
    return render(
        request,
        "contact/receipt.html.j2",
        {"receipt": format_receipt(symbols)},
        offered=languages_of(MODULE),
    )
