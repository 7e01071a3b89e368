"""The simulated office's staff plan: posts and people at work by month, from the
profile's ``staff``.

The simulated office has the profile's ``staff`` scaled as the year's figures (``--scale``,
at least one post); it works with as many staff ids (team leads and caseworkers), and its
staff plan has as many posts, and people at work as a real office has them: fewer in the
summer holidays and around Christmas, some posts vacant and some people ill all year.
The shares below are those of the example plan ``reference/staff.json`` (17.5 of 26 in
January, 14.5 in August). The plan has the form of ``AKTE_STAFF_FILE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

PRESENCE: Final = (
    0.673,
    0.654,
    0.692,
    0.712,
    0.692,
    0.635,
    0.577,
    0.558,
    0.654,
    0.692,
    0.673,
    0.596,
)
"""Of the posts, the share of people actually at work, January first."""


def staff_plan_json(office_id: str, posts: Mapping[int, int]) -> dict[str, Any]:
    """The staff plan of ``office_id`` with ``posts`` per year (the profile's ``staff``
    scaled as the year's figures, :meth:`OfficeProfile.staff_target`), in the form of
    ``AKTE_STAFF_FILE``."""
    months = {
        f"{year:04d}-{month:02d}": {
            "posts": count,
            "at_work": round(count * PRESENCE[month - 1], 1),
        }
        for year, count in sorted(posts.items())
        for month in range(1, 13)
    }
    return {
        "description": (
            "Staff plan of a simulated office (akte simulate), from the profile's staff."
        ),
        "offices": {office_id: months},
    }


def yearly_staff(plan: dict[str, Any], office_id: str, year: int) -> dict[str, float | None]:
    """The year's posts and people at work (averages of the months), as the report says
    them (one decimal)."""
    months = plan.get("offices", {}).get(office_id, {})
    entries = [
        months[key] for key in (f"{year:04d}-{m:02d}" for m in range(1, 13)) if key in months
    ]
    if not entries:
        return {"staff_posts": None, "staff_at_work": None}
    return {
        name: round(sum(float(entry[field]) for entry in entries) / len(entries), 1)
        for name, field in (("staff_posts", "posts"), ("staff_at_work", "at_work"))
    }
