"""Who the fuzzer acts as. Replaced by real tokens once authentication lands."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.settings import Settings


@dataclass(frozen=True)
class FuzzCaller:
    user_id: str
    office_id: str

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        return {"X-Akte-User": self.user_id}


def fuzz_caller(settings: Settings) -> FuzzCaller:
    return FuzzCaller(user_id="tl-01", office_id=settings.default_office_id)
