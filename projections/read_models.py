"""Every read model Akte keeps: what a runner follows and a rebuild rebuilds by default.

The worklists answer caseworkers' questions (:mod:`projections.worklists`); the others
serve the head of office and the auditors.
"""

from __future__ import annotations

from typing import Final

from projections.appointments import appointment_day, appointment_figures, appointment_holds
from projections.audit import audit_actions, read_access_log
from projections.figures import monitoring_counts, statistics, workload
from projections.projection import Projection
from projections.worklists import WORKLISTS, retention_due

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
    monitoring_counts.PROJECTION,
)
