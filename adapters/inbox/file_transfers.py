"""Case files between offices as messages: the file request, the file, the refusal, and
the proof of the previous office's hash chain (docs/guides/file-transfers.md).

- ``ABH.Aktenanforderung``: the new office (B) asks the previous one (A) for a person's
  file, on A's subject ``{prefix}.inbox.{A}.abh``, naming its own (``antwortAn``);
- ``ABH.Aktenuebersendung``: A's answer with the file: master data, every event of the
  file (kind, version, who, when, ``fakten`` and ``personenbezogen``), the documents
  with their bytes and hashes, and the proof (``nachweis``, format ``akte-case-export/1``
  of :mod:`adapters.store.verifier`: the events as A stored them, with their chain
  entries);
- ``ABH.AktenanforderungAbgelehnt``: A's refusal (``nicht-zustaendig``,
  ``hinderungsgrund``), without personal data;
- ``Administration.ReturnToSender`` of A's file: B could not take it over; the file names
  A's inbox in ``antwortAn`` (exactly A's, as the request names B's), so the return goes
  there and A's file is active again (:meth:`FileTransfers.receive_return`). A file
  without ``antwortAn`` (sent before it had one) is still taken; its return goes to B's
  ``{prefix}.returned.{B}`` as before.

:func:`handle_transfer_message` is one delivery without the broker, as
:func:`adapters.inbox.messages.handle_message` is for notices: validate against the
schema, call :mod:`service_file_transfers`, say what to send back. Every message out is
validated against its schema too.

:class:`StoreProofs` is the chain's side (:class:`service_file_transfers.ChainProofs`):
it reads A's chain from the store, and checks a proof offline: the chain recomputed with
:func:`adapters.store.verifier.check_export` (standard library only), and every event as
told in the message against the event as stored (its topic, version, who, when and
each field readable in the stored state; personal fields sealed with A's key of the person
are bound to the chain by A's seal, which only A can open, so they are compared where
A's store kept them in the clear).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Final
from uuid import UUID

from adapters.inbox.messages import Answer, checked, return_to_sender
from adapters.inbox.schemas import (
    FILE_ANSWER_TYPE,
    FILE_REFUSAL_TYPE,
    FILE_REQUEST_TYPE,
    FILE_TRANSFER_TYPES,
    RETURN_TO_SENDER_TYPE,
    problems,
)
from adapters.store.hash_chain import ChainSource, canonical_id
from adapters.store.verifier import EXPORT_FORMAT, GENESIS, check_export
from domain.case_file import CaseFile, MasterData, taken_over_kind, upcast_state
from domain.errors import InvalidValue
from domain.file_transfers import RefusalReason
from domain.values import require_lawful_value
from service_file_transfers import (
    TOPIC_PREFIX,
    FileDocument,
    FileEvent,
    FileTransfers,
    InboundFile,
    InboundFileRequest,
    InboundRefusal,
    InboundReturn,
    OutgoingRequest,
    RequestAnswer,
    RequestedPerson,
    RequestOutcome,
    SentFile,
)
from service_notices import MessageRefused

logger = logging.getLogger("akte.inbox")

CHANNEL: Final = "abh"
"""The last part of the subject of messages between foreigners' offices."""
_SEALED: Final = "_personal_"


def transfer_subject(subject_prefix: str, office_id: str) -> str:
    """Where an office receives file requests and answers."""
    return f"{subject_prefix}.inbox.{office_id}.{CHANNEL}"


# ------------------------------------------------------------------ the proof


class StoreProofs:
    """The chain's side of a transfer over a chained store (the recorder)."""

    def __init__(self, source: ChainSource) -> None:
        self._source = source

    def proof_of(self, case_id: UUID, up_to_version: int) -> dict[str, Any]:
        events: list[dict[str, Any]] = []
        head = GENESIS.hex()
        for row, entry, before in self._source.stream_history(case_id):
            if row.version > up_to_version:
                break
            events.append(
                {
                    "notification_id": row.notification_id,
                    "version": row.version,
                    "topic": row.topic,
                    "state": base64.b64encode(row.state).decode("ascii"),
                    "stream_hash": None if entry is None else entry.stream_hash.hex(),
                    "log_hash": None if entry is None else entry.log_hash.hex(),
                    "log_previous": None
                    if before is None
                    else {
                        "notification_id": before.notification_id,
                        "log_hash": before.log_hash.hex(),
                    },
                }
            )
            if entry is not None:
                head = entry.stream_hash.hex()
        seal = self._source.chain_seal()
        return {
            "format": EXPORT_FORMAT,
            "originator_id": canonical_id(case_id),
            "events": events,
            "stream_head": head,
            "sealed_up_to": 0 if seal is None else seal.sealed_up_to,
        }

    def problems(
        self, proof: Mapping[str, Any], case_id: UUID, events: Sequence[FileEvent]
    ) -> list[str]:
        return proof_problems(proof, case_id, events)

    def stream_head(self, proof: Mapping[str, Any]) -> str:
        try:
            return check_export(dict(proof))[1]
        except (KeyError, TypeError, ValueError):
            return ""

    def unchecked(self, proof: Mapping[str, Any]) -> list[int]:
        return unchecked_versions(proof)


def unchecked_versions(proof: Mapping[str, Any]) -> list[int]:
    """The versions in ``proof`` whose stored state is no readable JSON object (stored
    compressed or encrypted as a whole): only their chain can be checked."""
    unchecked = []
    for row in proof.get("events", []):
        try:
            state = json.loads(base64.b64decode(row["state"], validate=True))
        except (binascii.Error, ValueError, KeyError, TypeError):
            state = None
        if not isinstance(state, dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                unchecked.append(int(row["version"]))
    return unchecked


def proof_problems(
    proof: Mapping[str, Any], case_id: UUID, events: Sequence[FileEvent]
) -> list[str]:
    """What is wrong with a proof and the events told beside it (empty: nothing): the
    chain (recomputed offline), the file it is of, and each event against its stored form.
    Names versions and fields, never values."""
    try:
        found, _head = check_export(dict(proof))
        stored = list(proof["events"])
    except (KeyError, TypeError, ValueError):
        return ["the proof is unreadable"]
    if proof.get("originator_id") != case_id.hex:
        found.append("the proof is of another case file")
    if len(stored) != len(events):
        found.append(f"the proof holds {len(stored)} events, the file {len(events)}")
    for told, row in zip(events, stored, strict=False):
        found += _event_problems(told, row)
    return found


def _event_problems(told: FileEvent, row: Mapping[str, Any]) -> list[str]:
    place = f"version {told.version}"
    if row.get("version") != told.version:
        return [f"{place}: the proof holds version {row.get('version')} here"]
    if row.get("topic") != TOPIC_PREFIX + told.kind:
        return [f"{place}: the proof holds another kind of event"]
    try:
        state = json.loads(base64.b64decode(row["state"], validate=True))
    except (binascii.Error, ValueError, KeyError):
        # Stored compressed or encrypted as a whole: the chain is all that can be checked
        # (the check's result names the version as unchecked: unchecked_versions).
        return []
    if not isinstance(state, dict):
        return [f"{place}: the stored event is not an object"]
    # The message tells the event as A loads it (upcast to its class's current version);
    # the proof holds it as stored, perhaps in an older version: upcast that the same way.
    plain = {name: _untagged(value) for name, value in state.items()}
    try:
        stored = upcast_state(taken_over_kind(told.kind), plain, int(plain.pop("class_version", 1)))
    except (AttributeError, InvalidValue, TypeError, ValueError, KeyError):
        return [f"{place}: the stored event's class version cannot be read as this kind"]
    found = []
    expected = {"by": told.by, "at": told.at, **told.facts}
    for name, value in sorted(expected.items()):
        if stored.get(name, _ABSENT) != _plain(value):
            found.append(f"{place}: {name} differs from the stored event")
    for name, value in sorted(told.personal.items()):
        if name in stored and stored[name] != _plain(value):
            found.append(f"{place}: {name} differs from the stored event")
        elif name not in stored and _SEALED not in state:
            found.append(f"{place}: {name} is not in the stored event")
    return found


_ABSENT: Final = object()


def _untagged(value: Any) -> Any:
    """A stored value without the transcoder's type tags (``{"_type_", "_data_"}``)."""
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            return _untagged(value["_data_"])
        return {key: _untagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untagged(item) for item in value]
    return value


# ------------------------------------------------------ values to JSON and back


def _plain(value: Any) -> Any:
    """A field's value as JSON: dates and times as ISO 8601 text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _typed(hint: Any, value: Any) -> Any:
    """A JSON value as the field's type wants it (ISO text to dates and times)."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _typed(options[0], value) if len(options) == 1 else value
    if hint is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if hint is date and isinstance(value, str):
        return date.fromisoformat(value)
    if (origin is list or hint is list) and isinstance(value, list):
        [item] = typing.get_args(hint) or (Any,)
        return [_typed(item, part) for part in value]
    return value


class FieldOfWrongType(TypeError):
    """A value of a transferred event that is not of its field's type (names the field)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: does not fit its field's type")
        self.field = field


def _fits(hint: Any, value: Any) -> bool:
    """``value`` (typed by :func:`_typed`) is of the field's declared type. The proof
    cannot vouch for fields the sender's store sealed, so a message could carry a list
    where a name belongs; taken over, such a value would break every later read of the
    file."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, typing.TypeVar) or origin is typing.ClassVar:
        return True
    if origin in (types.UnionType, typing.Union):
        return any(_fits(option, value) for option in typing.get_args(hint))
    if hint is type(None) or hint is None:
        return value is None
    if origin is typing.Literal:
        return any(
            value == allowed and type(value) is type(allowed) for allowed in typing.get_args(hint)
        )
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    if hint is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    if origin is list or hint is list:
        [item] = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_fits(item, part) for part in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict) and all(isinstance(key, str) for key in value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a type this check does not know: the event's own checks decide


def typed_fields(
    kind_name: str, values: Mapping[str, Any], *, inner_kind: str | None = None
) -> dict[str, Any]:
    """The fields of an event of ``kind_name`` from their JSON form (``inner_kind``: the
    kind a part taken over before was, when ``values`` do not name it themselves). Raises
    ``TypeError`` for a value not of its field's type and :class:`InvalidValue` for one no
    event may hold (control characters, dates outside 1900-2199), naming the field only."""
    kind = taken_over_kind(kind_name)
    hints = typing.get_type_hints(kind, include_extras=True)
    typed = {name: _typed(hints.get(name, Any), value) for name, value in values.items()}
    for name, value in typed.items():
        if not _fits(hints.get(name, Any), value):
            raise FieldOfWrongType(name)
        require_lawful_value(name, value)
    if kind is CaseFile.PartTakenOver:
        # A part taken over before (a file that moved twice): its fields by its own kind.
        inner = inner_kind or str(values.get("source_kind", ""))
        for name in ("facts", "personal"):
            if isinstance(typed.get(name), dict):
                typed[name] = typed_fields(inner, typed[name])
    return typed


def event_json(event: FileEvent) -> dict[str, Any]:
    return {
        "version": event.version,
        "art": event.kind,
        "zeitpunkt": event.at.isoformat(),
        "erfasstAm": event.recorded_at.isoformat(),
        "bearbeiter": event.by,
        "fakten": _plain(event.facts),
        "personenbezogen": _plain(event.personal),
    }


def event_from_json(value: Mapping[str, Any]) -> FileEvent:
    kind = str(value["art"])
    facts = typed_fields(kind, value["fakten"])
    inner = str(facts.get("source_kind", "")) if kind == "PartTakenOver" else None
    personal = typed_fields(kind, value["personenbezogen"], inner_kind=inner)
    return FileEvent(
        kind=kind,
        version=int(value["version"]),
        at=datetime.fromisoformat(value["zeitpunkt"]),
        recorded_at=datetime.fromisoformat(value["erfasstAm"]),
        by=str(value["bearbeiter"]),
        facts=facts,
        personal=personal,
    )


# ------------------------------------------------------------------ messages


def _header(
    office_id: str,
    message_type: str,
    reader: str,
    created: datetime,
    *,
    message_id: str | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    head: dict[str, Any] = {
        "nachrichtUUID": message_id or str(uuid.uuid4()),
        "nachrichtentyp": message_type,
        "erstellungszeitpunkt": created.isoformat(),
        "autor": {"kennung": office_id},
        "leser": {"kennung": reader},
    }
    if reply_to is not None:
        head["antwortAn"] = reply_to
    return head


def request_message(request: OutgoingRequest, *, subject_prefix: str, created: datetime) -> Answer:
    """B's ``ABH.Aktenanforderung`` (its message id is the request's id), to A's subject."""
    person: dict[str, Any] = {
        "familienname": request.person.surname,
        "vornamen": request.person.given_names,
        "geburtsdatum": request.person.date_of_birth.isoformat(),
    }
    if request.person.file_number is not None:
        person["aktenzeichenABH"] = request.person.file_number
    body = {
        "nachrichtenkopf": _header(
            request.office_id,
            FILE_REQUEST_TYPE,
            request.from_office_id,
            created,
            message_id=str(request.request_id),
            reply_to=transfer_subject(subject_prefix, request.office_id),
        ),
        "person": person,
        "zuzugAm": request.moved_in_on.isoformat(),
    }
    subject = transfer_subject(subject_prefix, request.from_office_id)
    return checked(Answer(subject, FILE_REQUEST_TYPE, body))


def answer_message(
    answer: RequestAnswer, *, reply_to: str, created: datetime, subject_prefix: str | None = None
) -> Answer:
    """A's answer: the file, or the refusal; the same message id however often.
    ``subject_prefix``: the file names this office's inbox under it as its ``antwortAn``
    (where B returns a file it cannot take over); None: it names none (as before)."""
    request = answer.request
    head = _header(
        request.office_id,
        FILE_ANSWER_TYPE if answer.file is not None else FILE_REFUSAL_TYPE,
        request.requesting_office_id,
        created,
        message_id=answer.answer_message_id,
        reply_to=None
        if answer.file is None or subject_prefix is None
        else transfer_subject(subject_prefix, request.office_id),
    )
    bezug = {"nachrichtUUID": request.message_id}
    if answer.file is None:
        reason = answer.reason or "nicht-zustaendig"
        body: dict[str, Any] = {"nachrichtenkopf": head, "bezug": bezug, "grund": reason}
        return checked(Answer(reply_to, FILE_REFUSAL_TYPE, body))
    file = answer.file
    master = file.master_data
    body = {
        "nachrichtenkopf": head,
        "bezug": bezug,
        "akte": {
            "aktenzeichen": file.reference,
            "aktenId": file.case_id.hex,
            "abgegebenAm": file.sent_at.isoformat(),
            "abgegebenVon": file.sent_by,
            "stammdaten": {
                "familienname": master.surname,
                "vornamen": master.given_names,
                "geburtsdatum": master.date_of_birth.isoformat(),
                "staatsangehoerigkeit": master.nationality,
                "passnummer": master.passport_number,
                "anschrift": master.address,
            },
            "ereignisse": [event_json(event) for event in file.events],
            "dokumente": [
                {
                    "nummer": document.number,
                    "sha256": document.sha256,
                    "groesse": document.size_bytes,
                    "medientyp": document.media_type,
                    "inhalt": base64.b64encode(document.content).decode("ascii"),
                }
                for document in file.documents
            ],
        },
        "nachweis": file.proof,
    }
    return checked(Answer(reply_to, FILE_ANSWER_TYPE, body))


def to_request(message: Mapping[str, Any], office_id: str) -> InboundFileRequest:
    head = message["nachrichtenkopf"]
    person = message["person"]
    return InboundFileRequest(
        office_id=office_id,
        requesting_office_id=head["autor"]["kennung"],
        message_id=head["nachrichtUUID"],
        person=RequestedPerson(
            surname=person["familienname"],
            given_names=person["vornamen"],
            date_of_birth=date.fromisoformat(person["geburtsdatum"]),
            file_number=person.get("aktenzeichenABH"),
        ),
        moved_in_on=date.fromisoformat(message["zuzugAm"]),
    )


def _request_id(message: Mapping[str, Any]) -> UUID:
    try:
        return UUID(message["bezug"]["nachrichtUUID"])
    except ValueError:
        raise MessageRefused(
            "bezug/nachrichtUUID", "names no file request of this office"
        ) from None


def to_file(message: Mapping[str, Any], office_id: str) -> InboundFile:
    head = message["nachrichtenkopf"]
    file = message["akte"]
    master = file["stammdaten"]
    events: list[FileEvent] = []
    for number, event in enumerate(file["ereignisse"]):
        try:
            events.append(event_from_json(event))
        except (FieldOfWrongType, InvalidValue) as error:
            # Named by the event's place and the field, never by the value sent.
            raise MessageRefused(f"akte/ereignisse/{number}", str(error)) from None
        except (ValueError, TypeError):
            raise MessageRefused("akte", "a value does not fit its field's type") from None
    try:
        documents = [
            FileDocument(
                number=document["nummer"],
                sha256=document["sha256"],
                size_bytes=document["groesse"],
                media_type=document["medientyp"],
                content=base64.b64decode(document["inhalt"], validate=True),
            )
            for document in file["dokumente"]
        ]
        sent_at = datetime.fromisoformat(file["abgegebenAm"])
    except InvalidValue as error:
        raise MessageRefused("akte/ereignisse", str(error)) from None
    except (binascii.Error, ValueError, TypeError):
        raise MessageRefused("akte", "a value does not fit its field's type") from None
    return InboundFile(
        office_id=office_id,
        sender=head["autor"]["kennung"],
        message_id=head["nachrichtUUID"],
        request_id=_request_id(message),
        file=SentFile(
            case_id=UUID(file["aktenId"]),
            reference=file["aktenzeichen"],
            master_data=MasterData(
                surname=master["familienname"],
                given_names=master["vornamen"],
                date_of_birth=date.fromisoformat(master["geburtsdatum"]),
                nationality=master["staatsangehoerigkeit"],
                passport_number=master["passnummer"],
                address=master.get("anschrift"),
            ),
            events=events,
            documents=documents,
            proof=dict(message["nachweis"]),
            sent_at=sent_at,
            sent_by=file["abgegebenVon"],
        ),
    )


def to_refusal(message: Mapping[str, Any], office_id: str) -> InboundRefusal:
    head = message["nachrichtenkopf"]
    reason: RefusalReason = (
        "hinderungsgrund" if message["grund"] == "hinderungsgrund" else "nicht-zustaendig"
    )
    return InboundRefusal(
        office_id=office_id,
        sender=head["autor"]["kennung"],
        message_id=head["nachrichtUUID"],
        request_id=_request_id(message),
        reason=reason,
    )


# ------------------------------------------------------------------ one delivery


@dataclass(frozen=True)
class TransferHandled:
    """What one delivery of a transfer message did: ``outcome`` (``sent``, ``refused``,
    ``returned`` for A's answers; ``taken_over``, ``refused`` for B; ``reopened``,
    ``ignored`` for a return of A's file), whether it changed nothing (``duplicate``),
    and what to send back (A's answer, or a return to the sender)."""

    message_type: str
    outcome: str | None
    duplicate: bool
    answer: Answer | None
    returned: str | None = None
    case_id: UUID | None = None
    too_large: bool = False
    """A's file was larger than the broker takes: refused instead (``hinderungsgrund``)."""


def transfer_message_type(raw: bytes) -> str | None:
    """The message's type when it is a file transfer message, or the return of a file
    this office sent (None: another, or not readable: the notices' handling answers
    those)."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):  # unreadable: see handle_message
        return None
    head = message.get("nachrichtenkopf") if isinstance(message, dict) else None
    kind = head.get("nachrichtentyp") if isinstance(head, dict) else None
    if not isinstance(kind, str):
        return None
    if kind == RETURN_TO_SENDER_TYPE and _returned_type(message) == FILE_ANSWER_TYPE:
        return RETURN_TO_SENDER_TYPE
    return str(kind) if kind in FILE_TRANSFER_TYPES else None


def _returned_type(message: Mapping[str, Any]) -> object:
    rejection = message.get("rueckweisung")
    returned = rejection.get("abgewieseneNachricht") if isinstance(rejection, dict) else None
    return returned.get("nachrichtentyp") if isinstance(returned, dict) else None


def _own_inbox_named(head: object, subject_prefix: str) -> bool:
    """The message names exactly its author's own inbox as ``antwortAn`` (a suffix test
    would let ``evil.inbox.B.abh`` through)."""
    if not isinstance(head, dict):
        return False
    author = head.get("autor")
    sender = author.get("kennung") if isinstance(author, dict) else None
    if not isinstance(sender, str):
        return False
    return head.get("antwortAn") == transfer_subject(subject_prefix, sender)


def _return_address_only_if_own(message: object, subject_prefix: str) -> object:
    """The message as :func:`return_to_sender` may read it: a return carries the message
    (personal data) and goes to its ``antwortAn``, which must then be the author's own
    inbox; any other is dropped (the return goes to this office's returned subject)."""
    if not isinstance(message, dict):
        return message
    head = message.get("nachrichtenkopf")
    if not isinstance(head, dict) or "antwortAn" not in head:
        return message
    if _own_inbox_named(head, subject_prefix):
        return message
    without = {name: value for name, value in head.items() if name != "antwortAn"}
    return {**message, "nachrichtenkopf": without}


def _return_of_file(message: Any, *, transfers: FileTransfers, office_id: str) -> TransferHandled:
    """A return of a file this office sent: recorded once, never answered (a return is
    not returned); one that names no such file changes nothing and is counted."""

    def ignored(why: str) -> TransferHandled:
        logger.warning("inbox: a return of a file answer is ignored: %s", why)
        return TransferHandled(RETURN_TO_SENDER_TYPE, "ignored", False, None)

    if problems(message, RETURN_TO_SENDER_TYPE):
        return ignored("it breaks its schema")
    head = message["nachrichtenkopf"]
    if head["leser"]["kennung"] != office_id:
        return ignored("it is not for this office")
    rejection = message["rueckweisung"]
    returned = rejection["abgewieseneNachricht"]
    sender = head["autor"]["kennung"]
    if "nachricht" not in returned:
        # Left out (nachrichtAusgelassen: the file was too large to come back whole): its
        # header fields and bezug name it; the claim below checks that this office sent
        # that answer to the request of exactly this sender.
        answer_id = returned.get("nachrichtUUID")
        reference = returned.get("bezug")
        request_id = reference.get("nachrichtUUID") if isinstance(reference, dict) else None
        if (
            returned.get("nachrichtentyp") != FILE_ANSWER_TYPE
            or not isinstance(answer_id, str)
            or not isinstance(request_id, str)
        ):
            return ignored("the returned message is no file this office sent to its sender")
    else:
        try:
            original: Any = json.loads(base64.b64decode(returned["nachricht"], validate=True))
            original_head = original["nachrichtenkopf"]
            answer_id = str(original_head["nachrichtUUID"])
            request_id = str(original["bezug"]["nachrichtUUID"])
            author = original_head["autor"]["kennung"]
            reader = original_head["leser"]["kennung"]
            kind = original_head["nachrichtentyp"]
        except (binascii.Error, ValueError, TypeError, KeyError, RecursionError):
            return ignored("the returned message is not a file answer")
        if (
            kind != FILE_ANSWER_TYPE
            or author != office_id
            or reader != sender
            or returned.get("nachrichtUUID") != answer_id
        ):
            return ignored("the returned message is no file this office sent to its sender")
    outcome = transfers.receive_return(
        InboundReturn(
            office_id=office_id,
            sender=sender,
            message_id=head["nachrichtUUID"],
            answer_message_id=answer_id,
            request_message_id=request_id,
            reason=rejection["grund"],
            hints=rejection["ergaenzendeHinweise"],
        )
    )
    return TransferHandled(
        RETURN_TO_SENDER_TYPE, outcome.status, outcome.duplicate, None, None, outcome.case_id
    )


def handle_transfer_message(
    raw: bytes,
    *,
    transfers: FileTransfers,
    office_id: str,
    now: datetime,
    subject_prefix: str,
    answer_limit: int | None = None,
) -> TransferHandled:
    """One delivery of a file request, file or refusal: validated, applied once, answered.
    ``subject_prefix``: this broker's, which the requesting office's own inbox must use.
    ``answer_limit``: the largest answer the broker takes, in bytes (None: any); a file
    larger is refused instead of sent, and the case file stays this office's."""
    message: Any = json.loads(raw)
    message_type = str(message["nachrichtenkopf"]["nachrichtentyp"])
    if message_type == RETURN_TO_SENDER_TYPE:
        return _return_of_file(message, transfers=transfers, office_id=office_id)
    found = problems(message, message_type)
    if not found and message["nachrichtenkopf"]["leser"]["kennung"] != office_id:
        found = ["/nachrichtenkopf/leser/kennung: not this office"]
    head = message.get("nachrichtenkopf")
    # The file (personal data) goes to the requesting office's own inbox, nowhere else,
    # and a file's return (personal data too) to the sending office's own inbox: exactly
    # that subject. A file without one (sent before files named it) is still taken.
    if (
        not found
        and message_type == FILE_REQUEST_TYPE
        and not _own_inbox_named(head, subject_prefix)
    ):
        found = ["/nachrichtenkopf/antwortAn: not the requesting office's inbox"]
    if (
        not found
        and message_type == FILE_ANSWER_TYPE
        and "antwortAn" in head
        and not _own_inbox_named(head, subject_prefix)
    ):
        found = ["/nachrichtenkopf/antwortAn: not the sending office's inbox"]
    # A return goes to antwortAn only when it is the author's own inbox.
    returnable = _return_address_only_if_own(message, subject_prefix)
    if found:
        answer = return_to_sender(
            raw,
            office_id=office_id,
            reason="schema-verletzt",
            hints="; ".join(found),
            message=returnable,
            created=now,
        )
        return TransferHandled(message_type, None, False, answer, "schema-verletzt")
    try:
        if message_type == FILE_REQUEST_TYPE:
            inbound = to_request(message, office_id)
            reply_to = message["nachrichtenkopf"]["antwortAn"]
            built: dict[str, Answer] = {}

            def fits(file: SentFile, answer_id: str) -> bool:
                if answer_limit is None:
                    return True
                # The answer as it will go, kept to be sent if it fits.
                answer = answer_message(
                    RequestAnswer(inbound, answer_id, "sent", file=file),
                    reply_to=reply_to,
                    created=now,
                    subject_prefix=subject_prefix,
                )
                size = len(answer.payload())
                if size <= answer_limit:
                    built[answer_id] = answer
                    return True
                logger.error(
                    "inbox: the file of case file %s (%d bytes) answering a %s is larger "
                    "than the broker takes (%d bytes); the request is refused "
                    "(hinderungsgrund) and the file stays here",
                    file.case_id,
                    size,
                    message_type,
                    answer_limit,
                )
                return False

            given = transfers.answer_request(inbound, fits=fits)
            if given.outcome == "returned":
                # The file sent came back before: it is not sent again.
                return TransferHandled(message_type, given.outcome, True, None)
            reply = built.get(given.answer_message_id) or answer_message(
                given, reply_to=reply_to, created=now, subject_prefix=subject_prefix
            )
            case_id = None if given.file is None else given.file.case_id
            return TransferHandled(
                message_type,
                given.outcome,
                given.duplicate,
                reply,
                None,
                case_id,
                too_large=given.too_large,
            )
        outcome: RequestOutcome
        if message_type == FILE_ANSWER_TYPE:
            outcome = transfers.receive_file(to_file(message, office_id))
        else:
            outcome = transfers.receive_refusal(to_refusal(message, office_id))
        return TransferHandled(
            message_type, outcome.status, outcome.duplicate, None, None, outcome.case_id
        )
    except MessageRefused as error:
        answer = return_to_sender(
            raw,
            office_id=office_id,
            reason="regel-verletzt",
            hints=str(error),
            message=returnable,
            created=now,
        )
        return TransferHandled(message_type, None, False, answer, "regel-verletzt")


__all__ = [
    "CHANNEL",
    "StoreProofs",
    "TransferHandled",
    "answer_message",
    "event_from_json",
    "event_json",
    "handle_transfer_message",
    "proof_problems",
    "request_message",
    "to_file",
    "to_refusal",
    "to_request",
    "transfer_message_type",
    "transfer_subject",
    "typed_fields",
    "unchecked_versions",
]
