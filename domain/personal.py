"""Marks the event fields that hold personal data.

An event field annotated ``Annotated[T, PERSONAL]`` holds data about a person (names,
birth date, nationality, passport and card numbers, addresses, free text). Data
protection encrypts exactly these fields with a key per person; everything else (event
kind, times, legal bases, document kinds, office) stays readable for statistics and
audit.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Annotated, Final, TypeVar

T = TypeVar("T")


class _PersonalMarker:
    def __repr__(self) -> str:
        return "PERSONAL"


PERSONAL: Final = _PersonalMarker()

Personal = Annotated[T, PERSONAL]
"""``Personal[str]`` is a ``str`` field that holds personal data."""


@cache
def personal_fields(event_class: type) -> frozenset[str]:
    """Names of the fields of ``event_class`` marked as personal data."""
    hints = typing.get_type_hints(event_class, include_extras=True)
    return frozenset(
        name
        for name, hint in hints.items()
        if typing.get_origin(hint) is Annotated and PERSONAL in hint.__metadata__
    )
