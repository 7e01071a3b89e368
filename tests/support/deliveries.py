"""A delivery of the inbox's broker as :meth:`adapters.inbox.consumer.InboxConsumer.process`
sees it, for tests that hand the consumer a message without a broker."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SequencePair:
    stream: int


@dataclass(frozen=True)
class DeliveryMetadata:
    num_delivered: int
    sequence: SequencePair


class Delivery:
    """The message's data, what became of it (acknowledged, handed back with which
    delays, terminated), how often the broker says it delivered it, and its place in the
    stream (the same on every delivery of one message)."""

    def __init__(self, data: bytes, *, num_delivered: int = 1, sequence: int = 1) -> None:
        self.data = data
        self.metadata = DeliveryMetadata(num_delivered, SequencePair(sequence))
        self.acked = False
        self.terminated = False
        self.naked: list[float | None] = []

    async def ack(self) -> None:
        self.acked = True

    async def nak(self, delay: float | None = None) -> None:
        self.naked.append(delay)

    async def term(self) -> None:
        self.terminated = True
