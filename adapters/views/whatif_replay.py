"""The what-if replay: the event log, read-only, into a scratch read model, under a policy.

:func:`run_whatif` reads the log up to its head as it is when the replay starts (that
position is part of the answer: the same log gives the same result, byte for byte in
every format), into the tables of :mod:`projections.figures.whatif` in a temporary SQLite views
store of its own, and asks that read model what the policy would have saved. It never
writes the event store (it only reads notifications) and never touches the live views
(the scratch store is a file in a temporary directory, removed afterwards).

Policies are chosen by name (:data:`POLICIES`) with their parameters; a new policy is a
class in :mod:`domain.whatif` and a line in :func:`policy_for`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from adapters.views.runner import ApplicationEventLog
from adapters.views.store import SqliteViewsStore
from domain.whatif import FictionValidity, OrdinanceExtension, ValidityPolicy
from projections.engine import DEFAULT_BATCH_SIZE, Progress, ProjectionEngine
from projections.figures import whatif
from projections.figures.whatif import WhatIfResult
from projections.storage import EventLog

POLICIES: Final = ("fiction-validity", "ordinance-extension")
MAX_PERIOD_DAYS: Final = 3 * 366
"""The longest period one replay answers for (the log is read from its start anyway)."""


class WhatIfError(ValueError):
    """The what-if cannot run as asked (an unknown policy, a bad period or parameter)."""


def policy_for(
    name: str,
    *,
    months: int | None = None,
    include_duldung: bool = False,
    extended_to: date | None = None,
    legal_basis: str | None = None,
) -> ValidityPolicy:
    """The policy ``name`` with its parameters; :class:`WhatIfError` if they do not fit."""
    try:
        if name == "fiction-validity":
            if months is None:
                raise WhatIfError("the policy fiction-validity needs months")
            return FictionValidity(months=months, include_duldung=include_duldung)
        if name == "ordinance-extension":
            if extended_to is None:
                raise WhatIfError("the policy ordinance-extension needs extended_to (a date)")
            if legal_basis is None:
                return OrdinanceExtension(extended_to=extended_to)
            return OrdinanceExtension(extended_to=extended_to, legal_basis=legal_basis)
    except ValueError as error:
        raise WhatIfError(str(error)) from None
    raise WhatIfError(f"no policy named {name}; known: {', '.join(POLICIES)}")


def check_period(period_from: date, period_until: date) -> None:
    if period_until < period_from:
        raise WhatIfError("the period must not end before it begins")
    if (period_until - period_from).days >= MAX_PERIOD_DAYS:
        raise WhatIfError(f"the period may span at most {MAX_PERIOD_DAYS} days")


@dataclass(frozen=True)
class WhatIfRun:
    result: WhatIfResult
    events_read: int
    """Notifications the replay went through (its position)."""
    seconds: float


def run_whatif(
    log: EventLog,
    policy: ValidityPolicy,
    *,
    office_id: str,
    period_from: date,
    period_until: date,
    scratch_dir: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[Progress], None] | None = None,
) -> WhatIfRun:
    """Replay ``log`` into a scratch read model and answer for ``policy``.

    ``scratch_dir``: where the temporary views store goes (default: the system's
    temporary directory); it is removed afterwards either way."""
    check_period(period_from, period_until)
    started = time.perf_counter()
    head = log.head()
    with tempfile.TemporaryDirectory(prefix="akte-whatif-", dir=scratch_dir) as directory:
        views = SqliteViewsStore(Path(directory) / "whatif.sqlite3")
        try:
            writer = views.writer()
            try:
                engine = ProjectionEngine(log, writer, [whatif.PROJECTION], batch_size=batch_size)
                engine.catch_up(until=head, progress=progress)
            finally:
                writer.close()
            with views.reader() as session:
                result = whatif.whatif_result(
                    session,
                    policy,
                    office_id=office_id,
                    period_from=period_from,
                    period_until=period_until,
                    position=head,
                )
        finally:
            views.close()
    return WhatIfRun(result, head, time.perf_counter() - started)


def run_for_application(application: Any, policy: ValidityPolicy, **options: Any) -> WhatIfRun:
    """:func:`run_whatif` over the event log of an eventsourcing application (the service)."""
    return run_whatif(ApplicationEventLog(application), policy, **options)
