"""The read models of one process: the views store, the projections, and maybe their runner.

With the embedded store, ``akte serve`` follows the log in-process (``follow=True``). In a
PostgreSQL deployment with several API processes, separate ``akte projections run``
workers follow it and the API processes only read (``follow=False``); waiting for a
position then polls the views store. :func:`adapters.bootstrap.build_read_models` builds them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from adapters.bounded import BoundedCall
from adapters.views.replica import ReplicaReads
from adapters.views.runner import ApplicationEventLog, ProjectionRunner, wait_for_position
from projections.projection import Projection
from projections.status import projection_status
from projections.storage import ViewsStore
from service import AkteService

logger = logging.getLogger("akte.read_models")

STATUS_TIMEOUT: Final = 0.5
"""The longest a scrape of ``/metrics`` waits for the read models' positions."""
READY_LAG_EVENTS: Final = 10_000
"""More events than this behind the log, and ``/readyz`` says the lists are stale."""


@dataclass
class ReadModels:
    service: AkteService
    views: ViewsStore
    projections: tuple[Projection, ...]
    runner: ProjectionRunner | None = None
    replica: ReplicaReads | None = None
    """A streaming replica that may answer the lists, reports and histories
    (:mod:`adapters.views.replica`); ``views`` is then routed to it request by request."""

    def wait_until(self, position: int, timeout: float) -> bool:
        """True once every read model has processed ``position`` (read-your-writes)."""
        if self.runner is not None:
            return self.runner.wait_until(position, timeout)
        return wait_for_position(self.views, self.projections, position, timeout)

    def lag_problem(self) -> str | None:
        """For ``/readyz``: ``None`` while every read model is close to the log head and
        none has stopped on a failing event (those are named, with the event's position)."""
        statuses = projection_status(
            ApplicationEventLog(self.service), self.views, self.projections
        )
        failed = [status.failure for status in statuses if status.failure is not None]
        if failed:
            return "; ".join(
                f"read model {failure.name} stopped at event "
                f"{failure.position if failure.position is not None else '?'} ({failure.reason})"
                for failure in failed
            )
        behind = [status for status in statuses if status.lag_events > READY_LAG_EVENTS]
        if not behind:
            return None
        worst = max(behind, key=lambda status: status.lag_events)
        return f"{len(behind)} read models behind, worst {worst.lag_events} events"

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.views.close()


class ReadModelLag:
    """Collects each read model's distance from the log's head on every scrape:
    ``akte_read_model_lag_events`` and ``akte_read_model_lag_seconds``, by read model,
    and ``akte_read_model_failed`` (1 while the read model is stopped on an event it
    failed to process, else 0).

    A stopped read model also shows as a lag that only grows; the alert rules
    (deploy/prometheus/akte-rules.yml, akte-read-model-rules.yml) catch both. Left out
    of a scrape when the stores cannot be read.
    """

    def __init__(self, read_models: ReadModels) -> None:
        models = read_models
        # Within a bound: a store that hangs leaves these out of the scrape, and the
        # scrape does not hang with it.
        self._statuses = BoundedCall(
            lambda: projection_status(
                ApplicationEventLog(models.service), models.views, models.projections
            ),
            timeout=STATUS_TIMEOUT,
            max_age=0.0,
            name="read-model-status",
        )

    def collect(self) -> Iterator[Metric]:
        outcome = self._statuses()
        if not outcome.ok or outcome.value is None:
            logger.warning("metrics: read model positions unreadable (%s)", outcome.problem)
            return
        statuses = outcome.value
        events = GaugeMetricFamily(
            "akte_read_model_lag_events",
            "Events in the log that the read model has not processed yet.",
            labels=["read_model"],
        )
        seconds = GaugeMetricFamily(
            "akte_read_model_lag_seconds",
            "Age of the oldest event the read model has not processed yet (0: up to date).",
            labels=["read_model"],
        )
        failed = GaugeMetricFamily(
            "akte_read_model_failed",
            "1 while the read model is stopped on an event it failed to process "
            "(the log names the event and the error), else 0.",
            labels=["read_model"],
        )
        for status in statuses:
            events.add_metric([status.name], status.lag_events)
            seconds.add_metric([status.name], status.lag_seconds)
            failed.add_metric([status.name], 0 if status.failure is None else 1)
        yield events
        yield seconds
        yield failed
