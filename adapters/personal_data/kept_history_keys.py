"""The keys that seal kept histories (:mod:`adapters.reports.kept_histories`): each case
file's own data key, looked up as the mapper looks it up for the file's events."""

from __future__ import annotations

from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper

from adapters.personal_data.key_store import DataKeyErased, DataKeyMissing
from adapters.personal_data.mapper import PersonalDataMapper
from adapters.reports.kept_histories import KeptHistories


def kept_histories(mapper: Mapper[UUID]) -> KeptHistories | None:
    """Kept histories for a service whose events Akte's own mapper seals (its keys seal
    the kept entries too); None for any other, whose histories are then always written
    from their events."""
    if type(mapper) is not PersonalDataMapper:  # exactly Akte's, as batch_decoder asks
        return None
    sealing = mapper  # narrowed: the keys are read when a history asks

    def key_of(owner_id: str) -> AESGCM | None:
        try:
            return sealing.keys.for_reading(owner_id)
        except (DataKeyErased, DataKeyMissing):
            return None

    return KeptHistories(key_of)
