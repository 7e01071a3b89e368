"""Field types that keep out of a request what no read model can process.

The domain refuses the same values (:mod:`domain.values`), whatever the path a command
takes; checking them here as well answers an HTTP client with the usual ``422`` and the
field's name before any command runs. ``Line`` is for names, ids and codes, ``Text`` for
free text where a line break is meant; ``LawfulDate`` and ``LawfulTime`` keep dates and
times within 1900-2199, so that converting a time to UTC cannot overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, field_validator
from pydantic_core import PydanticCustomError

from domain.errors import InvalidValue
from domain.values import (
    require_lawful_day,
    require_lawful_time,
    require_lawful_value,
    require_printable,
)

T = TypeVar("T")

_FIELD = "value"
LAWFUL_VALUE_ERROR = "lawful_value"
"""The pydantic error type of a value the domain refuses (see ``_as_validation_error``)."""


def _as_validation_error(check: Callable[[str, T], None]) -> Callable[[T], T]:
    """A domain check as a pydantic validator: its refusal becomes an error of type
    ``lawful_value``, which FastAPI answers with ``422`` naming the field and the rule it
    breaks. The domain's messages name rules and bounds, never the value sent, so the
    client is told which rule (a plain ``ValueError`` gets a fixed text instead, since its
    message may hold the input)."""

    def validate(value: T) -> T:
        try:
            check(_FIELD, value)
        except InvalidValue as error:
            reason = error.message.removeprefix(f"{_FIELD}: ")
            raise PydanticCustomError(LAWFUL_VALUE_ERROR, "{reason}", {"reason": reason}) from None
        return value

    return validate


def _single_line(field: str, value: str) -> None:
    require_printable(field, value, line_breaks=False)


def _free_text(field: str, value: str) -> None:
    require_printable(field, value, line_breaks=True)


Line = Annotated[str, AfterValidator(_as_validation_error(_single_line))]
"""One line of text: no control characters at all (NUL, tab, line breaks, C1)."""
Text = Annotated[str, AfterValidator(_as_validation_error(_free_text))]
"""Free text: line breaks and tabs allowed, other control characters not."""
LawfulDate = Annotated[date, AfterValidator(_as_validation_error(require_lawful_day))]
"""A date between 1900-01-01 and 2199-12-31."""
LawfulTime = Annotated[AwareDatetime, AfterValidator(_as_validation_error(require_lawful_time))]
"""A time with a time zone whose local date lies between 1900-01-01 and 2199-12-31 and
whose UTC offset is whole seconds within 14 hours."""


class LawfulRequest(BaseModel):
    """Base of request bodies: every field, typed with the types above or not, is checked
    as an event's values are (text without control characters other than line breaks and
    tabs, dates and times in 1900-2199, integers within 64 bits), so a field added later
    without them is still kept safe."""

    @field_validator("*", mode="after")
    @classmethod
    def _lawful(cls, value: Any) -> Any:
        return _as_validation_error(require_lawful_value)(value)
