"""Who the fuzzer acts as: a team lead of the default office, with a real local token."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings


@dataclass(frozen=True)
class FuzzCaller:
    user_id: str
    office_id: str
    token: str

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def fuzz_caller(settings: Settings) -> FuzzCaller:
    """A team lead may call every case route, so the fuzzer reaches them all."""
    user_id, office_id = "tl-01", settings.default_office_id
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    token = issuer.issue(user_id=user_id, roles=[Role.TEAM_LEAD], office_id=office_id)
    return FuzzCaller(user_id=user_id, office_id=office_id, token=token)
