"""Messages in, as a registration office and the state's portal send them (the shapes of
adapters/inbox/schemas/), for the inbox tests and the guide's examples."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date
from typing import Any

from domain.case_file import MasterData

OFFICE = "abh-musterstadt"
REGISTRATION_OFFICE = "meldebehoerde-musterstadt"
PORTAL = "portal-land"


def header(
    message_type: str, *, sender: str, message_id: str | None = None, reply_to: str | None = None
) -> dict[str, Any]:
    head: dict[str, Any] = {
        "nachrichtUUID": message_id or str(uuid.uuid4()),
        "nachrichtentyp": message_type,
        "erstellungszeitpunkt": "2024-03-04T08:00:00+01:00",
        "autor": {"kennung": sender},
        "leser": {"kennung": OFFICE},
    }
    if reply_to is not None:
        head["antwortAn"] = reply_to
    return head


def person(master_data: MasterData, file_number: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "familienname": master_data.surname,
        "vornamen": master_data.given_names,
        "geburtsdatum": master_data.date_of_birth.isoformat(),
    }
    if file_number is not None:
        found["aktenzeichenABH"] = file_number
    return found


def notice(
    message_type: str,
    master_data: MasterData,
    anlass: dict[str, Any] | None = None,
    *,
    message_id: str | None = None,
    reply_to: str | None = None,
    effective_on: date = date(2024, 3, 1),
) -> dict[str, Any]:
    return {
        "nachrichtenkopf": header(
            message_type, sender=REGISTRATION_OFFICE, message_id=message_id, reply_to=reply_to
        ),
        "person": person(master_data),
        "wirksamAb": effective_on.isoformat(),
        "anlass": anlass or {},
    }


def move(
    master_data: MasterData, address: str = "Neue Straße 5, 12345 Musterstadt", **options: Any
) -> dict[str, Any]:
    return notice("MBABH.AenderungHauptwohnung", master_data, {"neueAnschrift": address}, **options)


def application(
    master_data: MasterData,
    *,
    reply_to: str,
    attachment: bytes,
    message_id: str | None = None,
    topic: str = "extend_residence_permit",
) -> dict[str, Any]:
    return {
        "nachrichtenkopf": header(
            "Portal.Aufenthaltsantrag", sender=PORTAL, message_id=message_id, reply_to=reply_to
        ),
        "antragsteller": {
            **person(master_data),
            "email": "antrag@example.org",
        },
        "aufenthaltszweck": {"anliegen": topic, "rechtsgrundlage": "aufenthg-16b"},
        "begruendung": "Ich beantrage die Verlängerung.",
        "anlagen": [
            {"dateiname": "antrag.pdf", "inhalt": base64.b64encode(attachment).decode("ascii")}
        ],
    }


def encoded(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()
