"""Who calls, and what each kind of route answers each caller: the policy as a table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tests.http.auth.identity_provider import (
    MUSTERSTADT,
    NACHBARSTADT,
    OMIT,
    ProviderKeys,
    make_token,
)


@dataclass(frozen=True)
class Caller:
    name: str
    sub: str | None
    roles: tuple[str, ...] = ()
    office: str | None = None

    def headers(self, keys: ProviderKeys) -> dict[str, str]:
        if self.sub is None:
            return {}
        office = OMIT if self.office is None else self.office
        token = make_token(keys.current, sub=self.sub, realm_roles=list(self.roles), office=office)
        return {"Authorization": f"Bearer {token}"}


CASEWORKER: Final = Caller("caseworker", "sb-01", ("caseworker",), MUSTERSTADT)
TEAM_LEAD: Final = Caller("team_lead", "tl-01", ("team_lead",), MUSTERSTADT)
AUDITOR: Final = Caller("auditor", "au-01", ("auditor",), MUSTERSTADT)
HEAD_OF_OFFICE: Final = Caller("head_of_office", "ho-01", ("head_of_office",), MUSTERSTADT)
ANONYMOUS: Final = Caller("anonymous", None)
OTHER_OFFICE: Final = Caller("caseworker_of_another_office", "sb-91", ("caseworker",), NACHBARSTADT)
CALLERS: Final = (CASEWORKER, TEAM_LEAD, AUDITOR, HEAD_OF_OFFICE, ANONYMOUS, OTHER_OFFICE)
DATA_PROTECTION_OFFICER: Final = Caller(
    "data_protection_officer", "dsb-01", ("data_protection_officer",), MUSTERSTADT
)
"""Not one of the matrix's callers: the one who approves erasures (route_table's writer)."""

OK: Final = 0
"""In the outcome tables: the route's own success status."""

# What each kind of route answers each caller. Written out here rather than derived from
# adapters/http/auth/permissions.py, so that a change of the policy has to change this table too.
OUTCOMES: Final[dict[str, dict[Caller, int]]] = {
    "public": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: OK,
        ANONYMOUS: OK,
        OTHER_OFFICE: OK,
    },
    # Opening needs no case file: the other office's caseworker opens one in its office.
    "open": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: OK,
    },
    "read": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 404,
    },
    "write": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 404,
    },
    "assign": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # A list of what the caller's offices hold: for another office's caseworker, theirs.
    "list": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: OK,
    },
    # Aggregate figures of the caller's office: management and auditors, not casework.
    "report": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: OK,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Management analyses (what-if replay, workload per caseworker): team leads and heads.
    "analysis": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: OK,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Trails across case files (actions by actor and day, the read-access log): auditors.
    "audit": {
        CASEWORKER: 403,
        TEAM_LEAD: 403,
        AUDITOR: OK,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Erasure requests (crypto-shredding): team leads of the office; another approves.
    "erase": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Approving another's erasure request: data protection officers only (four eyes).
    "approve-erasure": {
        CASEWORKER: 403,
        TEAM_LEAD: 403,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Which files are due for erasure: file numbers and dates, no personal data.
    "retention": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # The hash chains of the whole log: positions and hashes, no personal data.
    "verify": {
        CASEWORKER: 403,
        TEAM_LEAD: 403,
        AUDITOR: OK,
        HEAD_OF_OFFICE: OK,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
}
