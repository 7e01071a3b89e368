"""Marks the event fields that hold personal data.

An event field annotated ``Annotated[T, PERSONAL]`` holds data about a person (names,
birth date, nationality, passport and card numbers, addresses, free text). Data
protection encrypts exactly these fields with a key per person; everything else (event
kind, times, legal bases, document kinds, office) stays readable for statistics and
audit.
"""

from __future__ import annotations

import types
import typing
from datetime import date
from functools import cache
from typing import Annotated, Any, Final, TypeVar

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


# ------------------------------------------------------------------ redaction

REDACTED_TEXT: Final = "[gelöscht]"
"""What a personal text field reads as once its person's key is destroyed (erasure)."""
REDACTED_DATE: Final = date.min
"""What a personal date field reads as once erased: 0001-01-01, a date no person has, so
that typed code (``apply`` methods, HTTP schemas) carries it without special cases."""


def redacted_value(hint: Any) -> Any:
    """The redacted stand-in for a value of type ``hint`` (``Annotated`` or not).

    Text and codes read as :data:`REDACTED_TEXT`, dates as :data:`REDACTED_DATE`, lists as
    one redacted text, optional numbers as ``None``, other numbers as ``0``.
    """
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = len(options) < len(typing.get_args(hint))
        if len(options) == 1:
            inner = redacted_value(options[0])
            return None if optional and inner in (0, None) else inner
        return REDACTED_TEXT
    if origin is list or hint is list:
        return [REDACTED_TEXT]
    if hint is date:
        return REDACTED_DATE
    if hint in (int, float) or hint is bool:
        return 0
    # str, Literal codes (e.g. the purpose of a visit) and anything else: a text.
    return REDACTED_TEXT


@cache
def redacted_fields(event_class: type) -> dict[str, Any]:
    """Every personal field of ``event_class`` with its redacted stand-in."""
    hints = typing.get_type_hints(event_class, include_extras=True)
    return {name: redacted_value(hints[name]) for name in sorted(personal_fields(event_class))}


def is_redacted(value: object) -> bool:
    """Whether ``value`` is a redacted stand-in (text, date, or a list of redacted text)."""
    if isinstance(value, list):
        return bool(value) and all(is_redacted(item) for item in value)
    if isinstance(value, str):
        return value == REDACTED_TEXT
    return type(value) is date and value == REDACTED_DATE


def was_given(event: object, field: str) -> bool:
    """Whether an event's personal ``field`` holds a value, also for a reader that sees the
    event sealed (read models do): a sealed field is absent from the event, and only given
    values are sealed, an empty one stays readable as ``None``."""
    return getattr(event, field, _SEALED) is not None


_SEALED: Final = object()
