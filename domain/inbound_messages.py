"""Messages from other authorities and the state's portal are handled once each.

An :class:`InboundMessage` aggregate's id is derived from the office, the channel, the
sender and the sender's message id (XAusländer's ``nachrichtUUID``), and it is saved in
the same transaction as whatever the message caused (a fact on a case file, a notice in
triage, a contact submission, a procedure): a second delivery of the same message
conflicts on that id, so a message is applied once however often the broker delivers it,
and never half. Like :class:`domain.case_reference.CaseReference`, it holds no personal
data: which message, what came of it, and the id of what it caused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.errors import InvalidValue
from domain.values import LawfulEvent, require_choice, require_text

_NAMESPACE: Final = UUID("0b7c64a2-3f8e-4a51-8e0e-6d2f1a9c5b37")

InboundChannel = Literal["meldebehoerde", "portal"]
"""Where a message came from: the registration office, the state's online portal."""

InboundOutcome = Literal["recorded", "triage", "submission", "procedure"]
"""What became of it: a fact recorded on a case file, a notice in the triage worklist,
a contact submission, a procedure on a case file."""


class InboundMessage(Aggregate):
    """Claims one message of one sender for one office: it was handled."""

    def __init__(self) -> None:
        self.outcome: str = ""
        self.subject_id: str = ""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Handled(Event, Aggregate.Created):
        office_id: str
        channel: str
        sender: str
        message_id: str
        message_type: str
        outcome: str
        subject_id: str
        """The case file, notice or submission the message was recorded on."""

        def apply(self, claim: InboundMessage) -> None:
            claim.outcome = self.outcome
            claim.subject_id = self.subject_id

    @staticmethod
    def id_for(office_id: str, channel: str, sender: str, message_id: str) -> UUID:
        return uuid5(_NAMESPACE, f"{office_id}/{channel}/{sender}/{message_id}")

    @classmethod
    def handle(
        cls,
        *,
        office_id: str,
        channel: InboundChannel,
        sender: str,
        message_id: str,
        message_type: str,
        outcome: InboundOutcome,
        subject_id: UUID,
        act: Act,
    ) -> InboundMessage:
        require_choice("channel", channel, InboundChannel)
        require_choice("outcome", outcome, InboundOutcome)
        require_text("sender", sender, max_length=100)
        require_text("message_id", message_id, max_length=100)
        require_text("message_type", message_type, max_length=100)
        if not office_id:
            raise InvalidValue("office_id", "is required")
        return cls._create(
            cls.Handled,
            id=cls.id_for(office_id, channel, sender, message_id),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            channel=channel,
            sender=sender,
            message_id=message_id,
            message_type=message_type,
            outcome=outcome,
            subject_id=str(subject_id),
        )
