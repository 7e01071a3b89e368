"""The inbox's part of the AsyncAPI document (:mod:`adapters.outbox.asyncapi` merges it):
the channels Akte receives on and the ones it answers on, with each message's schema
inlined from ``schemas/*.json``.

- ``{prefix}.inbox.{office}.meldebehoerde``: registration-office notices (``publish``:
  the registration office sends, Akte receives);
- ``{prefix}.inbox.{office}.portal``: online applications;
- ``{replySubject}``: the subject a sender names in ``nachrichtenkopf.antwortAn``; Akte
  sends receipts and returns there (``subscribe``);
- ``{prefix}.inbox.{office}.abh``: case files between offices, and the return of a file
  that could not be taken over;
- ``{prefix}.returned.{office}``: returns of messages that named no reply subject.
"""

from __future__ import annotations

from typing import Any, Final

from adapters.inbox.schemas import (
    APPLICATION_TYPE,
    FILE_TRANSFER_TYPES,
    NOTICE_TYPES,
    RECEIPT_TYPE,
    RETURN_TO_SENDER_TYPE,
    inlined_schema,
)

CONTENT_TYPE: Final = "application/json"
_OFFICE: Final = {
    "description": "The office id (the messages' nachrichtenkopf.leser.kennung).",
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{1,59}$"},
}


def _ref(message_type: str) -> dict[str, str]:
    return {"$ref": f"#/components/messages/{message_type}"}


def _transfer_messages() -> list[dict[str, str]]:
    return [
        *(_ref(message_type) for message_type in FILE_TRANSFER_TYPES),
        _ref(RETURN_TO_SENDER_TYPE),
    ]


def inbox_channels(subject_prefix: str) -> dict[str, Any]:
    """The channels of messages in and their answers."""
    return {
        f"{subject_prefix}.inbox.{{office}}.meldebehoerde": {
            "description": "Registration-office notices to the foreigners' office "
            "(§ 72 AufenthV). Each message is applied once by its nachrichtUUID; an invalid "
            "one is returned to the sender (Administration.ReturnToSender).",
            "parameters": {"office": _OFFICE},
            "publish": {
                "operationId": "sendRegistrationOfficeNotice",
                "summary": "A registration office sends a notice; Akte records it once.",
                "message": {"oneOf": [_ref(message_type) for message_type in NOTICE_TYPES]},
            },
        },
        f"{subject_prefix}.inbox.{{office}}.portal": {
            "description": "Online applications from the state's portal; answered with a "
            "receipt (Portal.Eingangsbestaetigung) on the subject the portal names.",
            "parameters": {"office": _OFFICE},
            "publish": {
                "operationId": "sendOnlineApplication",
                "summary": "The portal sends an application; Akte records it once.",
                "message": _ref(APPLICATION_TYPE),
            },
        },
        "{replySubject}": {
            "description": "The subject the sender named in nachrichtenkopf.antwortAn.",
            "parameters": {
                "replySubject": {
                    "description": "A NATS subject of the sender's.",
                    "schema": {"type": "string"},
                }
            },
            "subscribe": {
                "operationId": "receiveAnswers",
                "summary": "Akte answers: receipts to the portal, returns to the sender.",
                "message": {"oneOf": [_ref(RECEIPT_TYPE), _ref(RETURN_TO_SENDER_TYPE)]},
            },
        },
        f"{subject_prefix}.inbox.{{office}}.abh": {
            "description": "Case files between foreigners' offices after a move (§ 67 "
            "AufenthV): the new office's file request (ABH.Aktenanforderung, naming its own "
            "subject of this form in antwortAn), and the previous office's answer to it: the "
            "file with its hash-chain proof (ABH.Aktenuebersendung, personal data, to the "
            "requesting office only, naming the sending office's own subject of this form in "
            "antwortAn) or a refusal (ABH.AktenanforderungAbgelehnt). A file the requesting "
            "office cannot take over comes back to the sending office's subject "
            "(Administration.ReturnToSender): the sending office's file is active again. "
            "Each is applied once by its nachrichtUUID.",
            "parameters": {"office": _OFFICE},
            "publish": {
                "operationId": "sendFileTransferMessage",
                "summary": "Another office requests a file, answers Akte's request, or "
                "returns a file Akte sent.",
                "message": {"oneOf": _transfer_messages()},
            },
            "subscribe": {
                "operationId": "receiveFileTransferMessage",
                "summary": "Akte requests files and answers requests on the other office's "
                "subject, and returns a file it cannot take over to the sending office's.",
                "message": {"oneOf": _transfer_messages()},
            },
        },
        f"{subject_prefix}.returned.{{office}}": {
            "description": "Returns of messages that named no reply subject (or were unreadable).",
            "parameters": {"office": _OFFICE},
            "subscribe": {
                "operationId": "receiveUnaddressedReturns",
                "summary": "Akte returns messages it cannot answer otherwise here.",
                "message": _ref(RETURN_TO_SENDER_TYPE),
            },
        },
    }


def inbox_messages() -> dict[str, Any]:
    """The messages in and out, by type, with their schemas as payloads."""
    found: dict[str, Any] = {}
    for message_type in (
        *NOTICE_TYPES,
        APPLICATION_TYPE,
        RECEIPT_TYPE,
        RETURN_TO_SENDER_TYPE,
        *FILE_TRANSFER_TYPES,
    ):
        payload = inlined_schema(message_type)
        found[message_type] = {
            "name": message_type,
            "title": message_type,
            "contentType": CONTENT_TYPE,
            "description": payload.get("description", ""),
            "payload": payload,
        }
    return found


__all__ = ["inbox_channels", "inbox_messages"]
