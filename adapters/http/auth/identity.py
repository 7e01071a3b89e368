"""Who is asking: the principal a verified bearer token describes, and the roles it claims.

Kept free of web and token libraries, so the token verifier, the local issuer and the
access policy can all use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """The roles Akte knows; the identity provider assigns them, spelled exactly so."""

    CASEWORKER = "caseworker"
    TEAM_LEAD = "team_lead"
    AUDITOR = "auditor"
    HEAD_OF_OFFICE = "head_of_office"
    DATA_PROTECTION_OFFICER = "data_protection_officer"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    ``user_id`` is the token's ``sub``: a pseudonymous account id, never a name; it is
    what every event records as ``by``. ``office_id`` is the office the account works
    for; ``None`` when the token names none (such an account can act on no office's
    case files).
    """

    user_id: str
    roles: frozenset[Role]
    office_id: str | None
