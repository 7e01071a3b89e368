"""From a message's bytes to a service command, and from its outcome to the answer.

:func:`handle_message` is the whole of what one delivery does, without the broker: read
the bytes as JSON, pick the schema by ``nachrichtenkopf.nachrichtentyp``, validate, turn
the message into an :class:`service_notices.InboundNotice` or
:class:`service_notices.InboundApplication`, call the service, and say what to send back
(:class:`Answer`): nothing for a notice handled, a ``Portal.Eingangsbestaetigung`` for an
application, an ``Administration.ReturnToSender`` for a message that is unreadable,
breaks its schema or a rule. Every answer is validated against its schema too.

An application's attachment comes inline (``inhalt``, base64) or by reference
(``referenz``: fetched from the portal by :class:`adapters.inbox.attachments.AttachmentFetcher`,
bounded in size and time, its SHA-256 checked); a reference that cannot be fetched or
does not match returns the application to its sender, as an unreadable attachment does.
Without a fetcher (no ``AKTE_INBOX_PORTAL_BASE_URL``) references are refused the same way.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from adapters.documents.inspection import UnacceptableFile, inspect_file
from adapters.inbox.attachments import (
    MAX_ATTACHMENT_BYTES,
    AttachmentFetcher,
    AttachmentUnavailable,
)
from adapters.inbox.schemas import (
    APPLICATION_TYPE,
    NOTICE_TYPES,
    RECEIPT_TYPE,
    RETURN_TO_SENDER_TYPE,
    fits_definition,
    problems,
)
from domain.case_file import RegistrationNoticeChanges
from domain.registration_notices import NoticedPerson
from domain.values import CONTACT_FORM_DOCUMENT_KIND
from service_intake import IncomingDocument
from service_notices import (
    Applicant,
    InboundApplication,
    InboundNotice,
    MessageOutcome,
    MessageRefused,
    Notices,
)


@dataclass(frozen=True)
class Answer:
    """A message to send back, to ``subject`` (None: the sender named no subject, and
    the consumer's fallback subject is used)."""

    subject: str | None
    message_type: str
    body: dict[str, Any]

    def payload(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Handled:
    """What one delivery did: the service's outcome (None: returned), and the answer."""

    outcome: MessageOutcome | None
    answer: Answer | None
    returned: str | None = None
    """The return reason (``grund``), when the message went back."""


class InvalidAnswer(RuntimeError):
    """An answer Akte built breaks its own schema: a defect, never sent."""


def _header(office_id: str, message_type: str, reader: str, created: datetime) -> dict[str, Any]:
    return {
        "nachrichtUUID": str(uuid.uuid4()),
        "nachrichtentyp": message_type,
        "erstellungszeitpunkt": created.isoformat(),
        "autor": {"kennung": office_id},
        "leser": {"kennung": reader},
    }


def checked(answer: Answer) -> Answer:
    found = problems(answer.body, answer.message_type)
    if found:
        raise InvalidAnswer(f"{answer.message_type} breaks its schema: {'; '.join(found)}")
    return answer


def return_to_sender(
    raw: bytes,
    *,
    office_id: str,
    reason: str,
    hints: str,
    message: object,
    created: datetime,
) -> Answer:
    """An ``Administration.ReturnToSender`` with the message as it came, and why."""
    head = message.get("nachrichtenkopf") if isinstance(message, dict) else None
    head = head if isinstance(head, dict) else {}
    author = head.get("autor")
    sender = author.get("kennung") if isinstance(author, dict) else None
    reply_to = head.get("antwortAn")
    returned: dict[str, Any] = {"nachricht": base64.b64encode(raw).decode("ascii")}
    for name in ("nachrichtUUID", "nachrichtentyp"):
        value = head.get(name)
        if isinstance(value, str) and len(value) <= 100:
            returned[name] = value
    # What it answered (a file's request): a return without the message still names it.
    reference = message.get("bezug") if isinstance(message, dict) else None
    reference_id = reference.get("nachrichtUUID") if isinstance(reference, dict) else None
    if isinstance(reference_id, str) and len(reference_id) <= 100:
        returned["bezug"] = {"nachrichtUUID": reference_id}
    reader = sender if isinstance(sender, str) and _is_code(sender) else "unbekannt"
    body = {
        "nachrichtenkopf": _header(office_id, RETURN_TO_SENDER_TYPE, reader, created),
        "rueckweisung": {
            "grund": reason,
            "ergaenzendeHinweise": hints[:2000],
            "abgewieseneNachricht": returned,
        },
    }
    subject = reply_to if isinstance(reply_to, str) and _is_subject(reply_to) else None
    return checked(Answer(subject, RETURN_TO_SENDER_TYPE, body))


def without_message(answer: Answer) -> Answer | None:
    """The return ``answer`` without the message it returns (``nachrichtAusgelassen``):
    its header fields and ``bezug`` stay, for a return too large for the broker. None:
    ``answer`` is no return carrying a message."""
    if answer.message_type != RETURN_TO_SENDER_TYPE:
        return None
    rejection = answer.body["rueckweisung"]
    returned = rejection["abgewieseneNachricht"]
    if "nachricht" not in returned:
        return None
    kept = {name: value for name, value in returned.items() if name != "nachricht"}
    kept["nachrichtAusgelassen"] = True
    body = {**answer.body, "rueckweisung": {**rejection, "abgewieseneNachricht": kept}}
    return checked(Answer(answer.subject, answer.message_type, body))


def _is_code(value: str) -> bool:
    return fits_definition(value, "kennung")


def _is_subject(value: str) -> bool:
    return fits_definition(value, "betreff")


def handle_message(
    raw: bytes,
    *,
    notices: Notices,
    office_id: str,
    now: datetime,
    fetcher: AttachmentFetcher | None = None,
) -> Handled:
    """One delivery of one message: validated, applied once, answered. ``fetcher``
    fetches attachments sent by reference (None: they are refused)."""
    try:
        message: Any = json.loads(raw)
    except (ValueError, RecursionError):
        # Not UTF-8, not JSON, a number beyond Python's digit limit, nesting beyond the
        # parser's depth: all unreadable, and answered so (UnicodeDecodeError and
        # JSONDecodeError are ValueErrors).
        hint = "the message is not JSON (UTF-8)"
        answer = return_to_sender(
            raw,
            office_id=office_id,
            reason="nachricht-unlesbar",
            hints=hint,
            message=None,
            created=now,
        )
        return Handled(None, answer, "nachricht-unlesbar")
    head = message.get("nachrichtenkopf") if isinstance(message, dict) else None
    message_type = head.get("nachrichtentyp") if isinstance(head, dict) else None
    if not isinstance(message_type, str) or (
        message_type not in NOTICE_TYPES and message_type != APPLICATION_TYPE
    ):
        answer = return_to_sender(
            raw,
            office_id=office_id,
            reason="nachrichtentyp-unbekannt",
            hints="nachrichtenkopf/nachrichtentyp: not a message Akte receives",
            message=message,
            created=now,
        )
        return Handled(None, answer, "nachrichtentyp-unbekannt")
    found = problems(message, str(message_type))
    if not found and message["nachrichtenkopf"]["leser"]["kennung"] != office_id:
        found = ["/nachrichtenkopf/leser/kennung: not this office"]
    if found:
        answer = return_to_sender(
            raw,
            office_id=office_id,
            reason="schema-verletzt",
            hints="; ".join(found),
            message=message,
            created=now,
        )
        return Handled(None, answer, "schema-verletzt")
    try:
        if message_type == APPLICATION_TYPE:
            head = message["nachrichtenkopf"]
            # Before any attachment is fetched: a redelivery needs none of them.
            earlier = notices.application_handled(
                office_id, head["autor"]["kennung"], head["nachrichtUUID"]
            )
            if earlier is not None:
                answer = receipt(message, earlier, office_id=office_id, created=now)
                return Handled(earlier, answer)
            application = to_application(message, office_id, fetcher=fetcher)
            outcome = notices.receive_application(application)
            return Handled(outcome, receipt(message, outcome, office_id=office_id, created=now))
        outcome = notices.receive_notice(to_notice(message, office_id))
        return Handled(outcome, None)
    except (MessageRefused, UnacceptableAttachment) as error:
        answer = return_to_sender(
            raw,
            office_id=office_id,
            reason="regel-verletzt",
            hints=str(error),
            message=message,
            created=now,
        )
        return Handled(None, answer, "regel-verletzt")


def to_notice(message: dict[str, Any], office_id: str) -> InboundNotice:
    head = message["nachrichtenkopf"]
    person = message["person"]
    anlass = message["anlass"]
    return InboundNotice(
        office_id=office_id,
        sender=head["autor"]["kennung"],
        message_id=head["nachrichtUUID"],
        message_type=head["nachrichtentyp"],
        notice_kind=NOTICE_TYPES[head["nachrichtentyp"]],
        effective_on=date.fromisoformat(message["wirksamAb"]),
        person=NoticedPerson(
            surname=person["familienname"],
            given_names=person["vornamen"],
            date_of_birth=date.fromisoformat(person["geburtsdatum"]),
            nationality=person.get("staatsangehoerigkeit"),
            file_number=person.get("aktenzeichenABH"),
        ),
        changes=RegistrationNoticeChanges(
            address=anlass.get("neueAnschrift"),
            surname=anlass.get("neuerFamilienname"),
            given_names=anlass.get("neueVornamen"),
            nationality=anlass.get("neueStaatsangehoerigkeit"),
        ),
    )


class UnacceptableAttachment(ValueError):
    """An attachment that is not base64, cannot be fetched or does not match its
    reference, or is not a PDF, JPEG or PNG Akte can read."""


def _attachment_bytes(
    attachment: dict[str, Any], index: int, fetcher: AttachmentFetcher | None
) -> tuple[str, bytes]:
    """Where the attachment's bytes came from (for the reason) and the bytes."""
    reference = attachment.get("referenz")
    if reference is None:
        where = f"anlagen/{index}/inhalt"
        try:
            return where, base64.b64decode(attachment["inhalt"], validate=False)
        except (binascii.Error, ValueError):
            raise UnacceptableAttachment(f"{where}: not base64") from None
    where = f"anlagen/{index}/referenz"
    if fetcher is None:
        raise UnacceptableAttachment(f"{where}: this office takes attachments inline only")
    try:
        data = fetcher.fetch(
            reference["uri"], sha256=reference["sha256"], size=reference["groesse"]
        )
    except AttachmentUnavailable as error:
        raise UnacceptableAttachment(f"{where}: {error}") from None
    return where, data


def to_application(
    message: dict[str, Any], office_id: str, *, fetcher: AttachmentFetcher | None = None
) -> InboundApplication:
    head = message["nachrichtenkopf"]
    applicant = message["antragsteller"]
    purpose = message["aufenthaltszweck"]
    documents = []
    for index, attachment in enumerate(message.get("anlagen", [])):
        where, data = _attachment_bytes(attachment, index, fetcher)
        content = io.BytesIO(data)
        try:
            inspection = inspect_file(content, max_bytes=MAX_ATTACHMENT_BYTES)
        except UnacceptableFile as error:
            raise UnacceptableAttachment(f"{where}: {error}") from None
        documents.append(
            IncomingDocument(
                content=content,
                sha256=inspection.sha256,
                size_bytes=inspection.size_bytes,
                media_type=inspection.media_type,
                page_count=inspection.page_count,
                name=attachment["dateiname"],
                kind=CONTACT_FORM_DOCUMENT_KIND,
            )
        )
    return InboundApplication(
        office_id=office_id,
        sender=head["autor"]["kennung"],
        message_id=head["nachrichtUUID"],
        message_type=head["nachrichtentyp"],
        applicant=Applicant(
            surname=applicant["familienname"],
            given_names=applicant["vornamen"],
            date_of_birth=date.fromisoformat(applicant["geburtsdatum"]),
            email=applicant["email"],
            file_number=applicant.get("aktenzeichenABH"),
        ),
        topic=purpose["anliegen"],
        legal_basis=purpose.get("rechtsgrundlage"),
        text=message["begruendung"],
        documents=documents,
    )


def receipt(
    message: dict[str, Any], outcome: MessageOutcome, *, office_id: str, created: datetime
) -> Answer:
    """The ``Portal.Eingangsbestaetigung`` of an application."""
    head = message["nachrichtenkopf"]
    body: dict[str, Any] = {
        "nachrichtenkopf": _header(office_id, RECEIPT_TYPE, head["autor"]["kennung"], created),
        "bezug": {"nachrichtUUID": head["nachrichtUUID"]},
        "ergebnis": "vorgang-angelegt"
        if outcome.outcome == "procedure"
        else "kontaktanfrage-angelegt",
        "bereitsEingegangen": outcome.duplicate,
    }
    if outcome.receipt is not None:
        body["eingangsnummer"] = outcome.receipt
    if outcome.procedure_number is not None:
        body["vorgangsnummer"] = outcome.procedure_number
    return checked(Answer(head["antwortAn"], RECEIPT_TYPE, body))


__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "Answer",
    "AttachmentFetcher",
    "Handled",
    "InvalidAnswer",
    "handle_message",
    "receipt",
    "return_to_sender",
    "to_application",
    "to_notice",
    "without_message",
]
