"""Every read model Akte keeps: what a runner follows and a rebuild rebuilds by default.

The worklists answer caseworkers' questions (:mod:`projections.worklists`); the others
serve the head of office and the auditors.
"""

from __future__ import annotations

from typing import Final

from projections import (
    appointment_day,
    appointment_figures,
    appointment_holds,
    audit_actions,
    read_access_log,
    retention_due,
    statistics,
    workload,
)
from projections.engine import Projection
from projections.worklists import WORKLISTS

READ_MODELS: Final[tuple[Projection, ...]] = (
    *WORKLISTS,
    statistics.PROJECTION,
    audit_actions.PROJECTION,
    read_access_log.PROJECTION,
    appointment_day.PROJECTION,
    appointment_holds.PROJECTION,
    appointment_figures.PROJECTION,
    retention_due.PROJECTION,
    workload.PROJECTION,
)
