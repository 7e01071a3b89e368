"""A case file as it stood on a business date: "what did this file say on 1 July 2025?".

The recorded-time point in time (``as_of``, :meth:`service.AkteService.case_version_at`)
answers what the *system* held at an instant: a prefix of the log. The office's question
is usually about the *business* time: a handover on 30 June recorded on 2 July belongs
to 30 June. The state on a business date is the replay, in log order, of every event
whose business time ``at`` lies on or before the end of that date in the office's time
zone; events recorded earlier but dated later are left out, events recorded later but
back-dated into the date are in.

Rules of the replay, all pure (no clock, no store):

- **An event without a business time** (none is recorded today; the base event has
  ``at`` since the first release, but a stored event written by hand or by a future
  class might lack it) counts at its recorded time ``timestamp``.
- **Before the opening** there is no file: :func:`replay_until` answers ``None``.
- **Numbers stay numbers**: parts of a file (procedures, documents, certificates ...) are
  numbered by their position in log order. When a part recorded earlier is dated after
  the date but a later-recorded part is back-dated into it, procedure 2 exists on the
  date and procedure 1 does not. The replay holds the place of the part that did not
  exist yet, so that events about procedure 2 reach procedure 2, and leaves it out of
  the state shown (:attr:`CaseOnDate.gaps` says where it was).
- ``version`` and ``modified_on`` of the state are those of the last event replayed: the
  state may be one the system never held at any version (it combines earlier and later
  recordings), so the version says how far into the log it reaches, nothing more.
- Erased personal data stays erased on every date: the replay reads the same events.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, cast

from domain.case_file import CaseFile
from domain.history import case_state


def business_time(event: CaseFile.Event) -> datetime:
    """The event's business time ``at``; its recorded time where it has none."""
    at = getattr(event, "at", None)
    return at if isinstance(at, datetime) else event.timestamp


def end_of_day(day: date, zone: tzinfo) -> datetime:
    """The first instant after ``day`` in ``zone`` (UTC), the exclusive bound of "on or
    before ``day``": 23:30 UTC on 30 June is already 1 July in Berlin (summer time)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class CaseOnDate:
    """A case file's state replayed up to a business-time bound."""

    case: CaseFile
    """The file as it stood, without the parts that did not exist yet."""
    before: datetime
    """The exclusive bound: events whose business time is earlier are in."""
    included: tuple[int, ...]
    """The versions of the events replayed, in log order."""
    gaps: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Per list of parts (``procedures``, ``documents`` ...): the positions (0-based, in
    log order) of parts that were recorded before a part of this state but are dated
    after the bound; left out of :attr:`case`."""

    def state(self) -> dict[str, Any]:
        """:func:`domain.history.case_state` with an empty part at each gap, so that list
        positions mean the same part on every date (a part that appears later shows in a
        diff as new, value by value, at its own position)."""
        data = case_state(self.case)
        for name, positions in self.gaps.items():
            parts = data[name]
            for position in sorted(positions):
                parts.insert(position, {})
        return data


def replay_until(events: Sequence[CaseFile.Event], before: datetime) -> CaseOnDate | None:
    """The file replayed from ``events`` (all of one file, in log order, from its
    opening) with every event whose business time is before ``before``; ``None`` if the
    file was not opened before it."""
    if not events or business_time(events[0]) >= before:
        return None
    chosen = [business_time(event) < before for event in events]
    last = max(index for index, keep in enumerate(chosen) if keep)
    case = cast(CaseFile, events[0].mutate(None))
    included = [events[0].originator_version]
    places = _Places(case)
    for event, keep in zip(events[1 : last + 1], chosen[1 : last + 1], strict=True):
        if keep:
            event.apply(case)
            case.version = event.originator_version
            case.modified_on = event.timestamp
            included.append(event.originator_version)
            places.probe = None  # the file moved on: the next copy is taken afresh
        else:
            places.hold(event)
    held = places.held
    for name, positions in held.items():
        parts = cast(list[Any], getattr(case, name))
        for position in reversed(positions):
            del parts[position]
    return CaseOnDate(
        case=case,
        before=before,
        included=tuple(included),
        gaps={name: tuple(positions) for name, positions in held.items()},
    )


class _Places:
    """Holds the places of the parts that events dated later would create: each such
    event is applied to a copy of the file (the probe), and only what it appended to the
    file's lists of parts is taken over, as placeholders removed after the replay. One
    copy serves a run of such events; it is taken afresh after an event that counts."""

    def __init__(self, case: CaseFile) -> None:
        self.case = case
        self.probe: CaseFile | None = None
        self.held: dict[str, list[int]] = {}

    def hold(self, event: CaseFile.Event) -> None:
        if self.probe is None:
            self.probe = copy.deepcopy(self.case)
        probe = self.probe
        try:
            event.apply(probe)
        except (LookupError, AttributeError, TypeError, ValueError):
            # An event about a part that is itself not there yet (only in files
            # recorded before business times were checked): it creates nothing. The
            # probe may be half changed: the next event gets a fresh one.
            self.probe = None
            return
        for name, value in vars(self.case).items():
            if name.startswith("_") or not isinstance(value, list):
                continue
            grown = cast(list[Any], getattr(probe, name))[len(value) :]
            for part in grown:
                self.held.setdefault(name, []).append(len(value))
                value.append(part)
