"""The staff plan: posts and people at work per office and month, from a JSON file.

``AKTE_STAFF_FILE`` names the file; ``adapters/reference/staff.json`` is an example of
its form::

    {"offices": {"abh-musterstadt": {"2024-01": {"posts": 26, "at_work": 17.5}, ...}}}

Without the setting there is no plan, and the figures per post and per person at work
say "not recorded" (never 0).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from adapters.settings import Settings
from projections.figures.workload import StaffMonth, StaffPlan

_MONTH: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class StaffFileError(ValueError):
    """The staff file cannot be read or is not a staff plan."""


def staff_plan_from_json(data: Any) -> StaffPlan:
    if not isinstance(data, dict) or not isinstance(data.get("offices"), dict):
        raise StaffFileError("the staff file must be an object with an 'offices' object")
    offices: dict[str, dict[str, StaffMonth]] = {}
    for office, months in data["offices"].items():
        if not isinstance(months, dict):
            raise StaffFileError(f"office {office}: months must be an object")
        parsed: dict[str, StaffMonth] = {}
        for month, entry in months.items():
            if not _MONTH.match(str(month)) or not isinstance(entry, dict):
                raise StaffFileError(f"office {office}: {month!r} is not a month YYYY-MM")
            values = []
            for name in ("posts", "at_work"):
                value = entry.get(name)
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise StaffFileError(f"office {office}, {month}: {name} must be a number >= 0")
                values.append(float(value))
            parsed[str(month)] = StaffMonth(posts=values[0], at_work=values[1])
        offices[str(office)] = parsed
    return StaffPlan(offices)


def load_staff_plan(path: Path) -> StaffPlan:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise StaffFileError(f"cannot read the staff file {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise StaffFileError(f"the staff file {path} is not JSON") from None
    return staff_plan_from_json(data)


EXAMPLE_STAFF_FILE: Final = Path(__file__).with_name("staff.json")
"""The example plan (the demo and simulation offices): the demo's staff plan when
``AKTE_STAFF_FILE`` is unset."""


def staff_plan_for(settings: Settings) -> StaffPlan | None:
    """The configured staff plan, or ``None`` without ``AKTE_STAFF_FILE``."""
    if settings.staff_file is None:
        return None
    return load_staff_plan(settings.staff_file)
