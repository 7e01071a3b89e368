"""The metrics of ``/metrics`` that say what Akte's tasks and channels did.

Two kinds, said per metric in docs/operations/monitoring.md:

- **From the stores, on every scrape** (custom collectors): whatever process did the
  work, and after any restart, every server process exports the same figures.
  :class:`ChannelCounts` reads the read model :mod:`projections.figures.monitoring_counts`
  (mails sent, failed, bounced; payment notifications recorded by outcome; erasures by
  legal ground): counters that only grow, counted from the event log.
  :class:`TaskRunFigures` reads the last runs of ``akte audit verify``, ``akte deadlines
  tick`` and ``akte appointments tick`` (:mod:`adapters.monitoring.runs`).
- **In this process** (:class:`PaymentNotificationRefusals`): payment notifications the
  server refused or had on record already record nothing, so only the server that
  answered them can count them; each server process counts its own since its start
  (Prometheus adds up instances and copes with restarts, ``rate`` and ``increase``).

A figure the store cannot give within half a second is left out of that scrape (the
server log names the error's type). Labels are fixed words, task names and legal-ground
codes: never personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from adapters.bounded import BoundedCall
from adapters.monitoring.runs import TASKS, TaskRun, task_runs
from adapters.views.replica import ReplicaReads
from domain.erasure import ERASURE_GROUNDS
from projections.figures.monitoring_counts import (
    ERASURES,
    MAIL_OUTCOMES,
    MAILS,
    PAYMENT_NOTIFICATIONS,
    PAYMENT_OUTCOMES,
    event_counts,
)
from projections.storage import ViewsStore

logger = logging.getLogger("akte.monitoring")

FIGURE_TIMEOUT: Final = 0.5
"""The longest wait for the store's figures in one scrape (seconds)."""
FIGURE_MAX_AGE: Final = 0.0
"""Every scrape asks the store again (concurrent scrapes share one query)."""

REFUSAL_REASONS: Final = (
    "unsigned",
    "bad_signature",
    "malformed",
    "unknown_transaction",
    "mismatch",
)
"""Why a payment notification was refused (``4xx``, nothing recorded): no signature; a
signature that does not verify with the shared key; a body that is not a notification;
a transaction no payment has; an amount, currency or time that does not fit the payment."""


class ChannelCounts:
    """``akte_mails_total{outcome}``, ``akte_payment_notifications_recorded_total{outcome}``
    and ``akte_erasures_total{legal_ground}``, from the read model of counts.

    Every known outcome and legal ground is exported, 0 until it happens, so that
    ``increase()`` sees the first one. Left out of a scrape before the read model's first
    run or when the views store does not answer in time.
    """

    def __init__(self, views: ViewsStore) -> None:
        self._counts = BoundedCall(
            lambda: event_counts(views),
            timeout=FIGURE_TIMEOUT,
            max_age=FIGURE_MAX_AGE,
            name="channel-counts",
        )

    def describe(self) -> Iterator[Metric]:
        """The names, without asking the store (the registry checks them on registering)."""
        for name in ("akte_mails", "akte_payment_notifications_recorded", "akte_erasures"):
            yield CounterMetricFamily(name, "")

    def collect(self) -> Iterator[Metric]:
        outcome = self._counts()
        if not outcome.ok or outcome.value is None:
            # Before the read model's first run (a new store, a new release) that is normal.
            level = logging.INFO if outcome.problem == "ViewNotBuilt" else logging.WARNING
            logger.log(level, "metrics: channel counts unreadable (%s)", outcome.problem)
            return
        counts = outcome.value
        yield _counter(
            "akte_mails",
            "Appointment mails by outcome, from the event log: sent (the mail server took "
            "it), failed (an attempt the mail server refused or could not be reached for), "
            "bounced (came back after it was sent).",
            "outcome",
            counts,
            MAILS,
            MAIL_OUTCOMES,
        )
        yield _counter(
            "akte_payment_notifications_recorded",
            "Payment platform notifications recorded, by outcome (paid, surplus: paid a "
            "fee already settled, failed, expired), from the event log.",
            "outcome",
            counts,
            PAYMENT_NOTIFICATIONS,
            PAYMENT_OUTCOMES,
        )
        yield _counter(
            "akte_erasures",
            "Case files whose person's data was erased, by legal ground (code), from the "
            "event log.",
            "legal_ground",
            counts,
            ERASURES,
            tuple(ERASURE_GROUNDS),
        )


def _counter(
    name: str,
    documentation: str,
    label: str,
    counts: dict[tuple[str, str], int],
    figure: str,
    known: Sequence[str],
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    seen = sorted(outcome for each, outcome in counts if each == figure)
    for value in dict.fromkeys((*known, *seen)):
        family.add_metric([value], counts.get((figure, value), 0))
    return family


class TaskRunFigures:
    """The runs of the command-line tasks, by ``task``:

    - ``akte_task_last_run_timestamp_seconds``: when the last run ended (0: never ran);
    - ``akte_task_last_success_timestamp_seconds``: when the last successful run ended
      (0: none yet), so ``time() - ...`` is the age of the last good verification;
    - ``akte_task_last_run_ok``: 1 if the last run succeeded, 0 if it found a broken hash
      chain or failed (only for tasks that ran);
    - ``akte_task_last_run_duration_seconds`` and ``akte_task_last_run_steps`` (events
      verified, consents recorded, tick steps taken);
    - ``akte_task_runs_total{result="ok|failed"}``: runs so far (``broken`` counts as
      failed).

    ``tasks``: the tasks this deployment runs; each is exported even before its first run,
    so that an alert can say it never ran.
    """

    def __init__(self, views: ViewsStore, tasks: Sequence[str] = TASKS) -> None:
        self._tasks = tuple(tasks)
        self._runs = BoundedCall(
            lambda: task_runs(views),
            timeout=FIGURE_TIMEOUT,
            max_age=FIGURE_MAX_AGE,
            name="task-runs",
        )

    def describe(self) -> Iterator[Metric]:
        """The names, without asking the store (the registry checks them on registering)."""
        for name in (
            "akte_task_last_run_timestamp_seconds",
            "akte_task_last_success_timestamp_seconds",
            "akte_task_last_run_ok",
            "akte_task_last_run_duration_seconds",
            "akte_task_last_run_steps",
        ):
            yield GaugeMetricFamily(name, "")
        yield CounterMetricFamily("akte_task_runs", "")

    def collect(self) -> Iterator[Metric]:
        outcome = self._runs()
        if not outcome.ok or outcome.value is None:
            logger.warning("metrics: task runs unreadable (%s)", outcome.problem)
            return
        runs = outcome.value
        last_run = GaugeMetricFamily(
            "akte_task_last_run_timestamp_seconds",
            "When the task's last run ended, in seconds since 1970 (0: never ran).",
            labels=["task"],
        )
        last_success = GaugeMetricFamily(
            "akte_task_last_success_timestamp_seconds",
            "When the task's last successful run ended, in seconds since 1970 (0: none yet).",
            labels=["task"],
        )
        last_ok = GaugeMetricFamily(
            "akte_task_last_run_ok",
            "1 if the task's last run succeeded; 0 if it failed (audit verify: a broken hash "
            "chain, or it could not read the log).",
            labels=["task"],
        )
        duration = GaugeMetricFamily(
            "akte_task_last_run_duration_seconds",
            "How long the task's last run took.",
            labels=["task"],
        )
        steps = GaugeMetricFamily(
            "akte_task_last_run_steps",
            "What the task's last run did: events verified (audit_verify), consents recorded "
            "(deadlines_tick), reminders, lapses, mails, offers and observations "
            "(appointments_tick).",
            labels=["task"],
        )
        total = CounterMetricFamily(
            "akte_task_runs", "Runs of the task so far, by result.", labels=["task", "result"]
        )
        for task in dict.fromkeys((*self._tasks, *sorted(runs))):
            run: TaskRun | None = runs.get(task)
            if run is None:
                last_run.add_metric([task], 0)
                last_success.add_metric([task], 0)
                total.add_metric([task, "ok"], 0)
                total.add_metric([task, "failed"], 0)
                continue
            last_run.add_metric([task], run.last_finished_at.timestamp())
            success = run.last_success_at
            last_success.add_metric([task], 0 if success is None else success.timestamp())
            last_ok.add_metric([task], 1 if run.last_result == "ok" else 0)
            duration.add_metric(
                [task], max(0.0, (run.last_finished_at - run.last_started_at).total_seconds())
            )
            steps.add_metric([task], run.last_steps)
            total.add_metric([task, "ok"], run.runs_ok)
            total.add_metric([task, "failed"], run.runs_failed)
        yield from (last_run, last_success, last_ok, duration, steps, total)


class PaymentNotificationRefusals:
    """Counted by the server that answered (nothing is recorded for these):
    ``akte_payment_notifications_refused_total{reason}`` and
    ``akte_payment_notifications_repeated_total`` (already on record: a retry of the
    platform, or a failure after the payment was paid)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._refused = Counter(
            "akte_payment_notifications_refused",
            "Payment notifications this server process refused (4xx, nothing recorded), by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in REFUSAL_REASONS:
            self._refused.labels(reason)  # 0 from the start: increase() sees the first
        self._repeated = Counter(
            "akte_payment_notifications_repeated",
            "Payment notifications this server process answered as already on record "
            "(nothing recorded).",
            registry=registry,
        )

    def refused(self, reason: str) -> None:
        if reason not in REFUSAL_REASONS:
            msg = f"unknown refusal reason {reason!r}"
            raise ValueError(msg)
        self._refused.labels(reason).inc()

    def repeated(self) -> None:
        self._repeated.inc()


class ReplicaFigures:
    """A read replica's state on every scrape (:mod:`adapters.views.replica`):
    ``akte_replica_up`` (1 while it answers within half a second, else 0: its reads go to
    the primary), ``akte_replica_lag_events`` (events the primary holds and the replica
    has not replayed), ``akte_replica_replay_lag_seconds`` (age of the last replayed
    transaction while WAL waits to be replayed, else 0), and
    ``akte_replica_reads_total{server}`` (reads of lists, reports and histories this
    process sent to the replica or the primary since its start). The lag figures are
    left out while the replica does not answer."""

    def __init__(self, replica: ReplicaReads) -> None:
        self._replica = replica

    def describe(self) -> Iterator[Metric]:
        """The names, without asking the replica (the registry checks them on registering)."""
        yield GaugeMetricFamily("akte_replica_up", "")
        yield GaugeMetricFamily("akte_replica_lag_events", "")
        yield GaugeMetricFamily("akte_replica_replay_lag_seconds", "")
        yield CounterMetricFamily("akte_replica_reads", "", labels=["server"])

    def collect(self) -> Iterator[Metric]:
        outcome = self._replica.state()
        state = outcome.value if outcome.ok else None
        if state is None:
            logger.warning("metrics: replica state unreadable (%s)", outcome.problem)
        yield GaugeMetricFamily(
            "akte_replica_up",
            "1 while the read replica answers (it serves lists, reports and histories), else 0.",
            value=0 if state is None else 1,
        )
        if state is not None:
            yield GaugeMetricFamily(
                "akte_replica_lag_events",
                "Events the primary holds that the read replica has not replayed yet.",
                value=state.lag_events,
            )
            yield GaugeMetricFamily(
                "akte_replica_replay_lag_seconds",
                "Age of the replica's last replayed transaction while it is behind the "
                "primary (0: it holds all the primary has).",
                value=state.replay_lag_seconds,
            )
        reads = CounterMetricFamily(
            "akte_replica_reads",
            "Reads of lists, reports and histories this process sent to each server.",
            labels=["server"],
        )
        for server, count in sorted(self._replica.served_counts().items()):
            reads.add_metric([server], count)
        yield reads


INBOX_OUTCOMES: Final = (
    "applied",
    "triaged",
    "returned",
    "duplicate",
    "retried",
    "ignored",
    "unsendable",
    "too_large",
)
"""What became of a message in (``akte inbox run``): applied (recorded on a case file,
or a procedure or contact submission made of it), triaged (a notice no file matched for
certain), returned to its sender (unreadable, against its schema or a rule), ignored (a
return of a file answer this office never sent, or from another office: not answered),
duplicate (handled before: nothing changed), retried (handed back to the broker: the store was
away, or a defect), unsendable (its answer is larger than the broker takes, even a return
without the message: terminated, not delivered again), too_large (a file request refused,
``hinderungsgrund``, because the file is larger than the broker takes: answered, the case
file stays this office's)."""


class InboxMetrics:
    """Counted by the inbox worker in its own process (``akte inbox run --metrics-port``),
    since its start: ``akte_inbox_messages_received_total`` (deliveries taken from the
    broker, redeliveries included), ``akte_inbox_messages_total{outcome}`` (one of
    :data:`INBOX_OUTCOMES` per delivery), and the office's durable consumer at the broker,
    as last seen: ``akte_inbox_pending_messages`` (waiting, not yet delivered: the
    consumer's lag) and ``akte_inbox_unacknowledged_messages`` (delivered, not yet
    acknowledged). Labels are the fixed outcomes only: no message ids, senders or names."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._received = Counter(
            "akte_inbox_messages_received",
            "Messages in (notices, applications) this inbox worker took from the broker, "
            "redeliveries included.",
            registry=registry,
        )
        self._handled = Counter(
            "akte_inbox_messages",
            "Messages in this inbox worker handled, by outcome: applied, triaged, returned "
            "(to the sender), duplicate (handled before), retried (handed back), ignored, "
            "unsendable (answer too large for the broker: terminated), too_large (a file "
            "request refused because the file is too large for the broker).",
            ["outcome"],
            registry=registry,
        )
        for outcome in INBOX_OUTCOMES:
            self._handled.labels(outcome)  # 0 from the start: increase() sees the first
        self._pending = Gauge(
            "akte_inbox_pending_messages",
            "Messages waiting at the broker for this office's inbox consumer (its lag).",
            registry=registry,
        )
        self._unacknowledged = Gauge(
            "akte_inbox_unacknowledged_messages",
            "Messages delivered to this office's inbox consumer and not yet acknowledged.",
            registry=registry,
        )

    def received(self) -> None:
        self._received.inc()

    def handled(self, outcome: str) -> None:
        if outcome not in INBOX_OUTCOMES:
            msg = f"unknown inbox outcome {outcome!r}"
            raise ValueError(msg)
        self._handled.labels(outcome).inc()

    def backlog(self, *, pending: int, unacknowledged: int) -> None:
        self._pending.set(pending)
        self._unacknowledged.set(unacknowledged)


def install_monitoring(
    registry: CollectorRegistry, views: ViewsStore, *, tasks: Sequence[str] = TASKS
) -> PaymentNotificationRefusals:
    """Register the collectors on an application's registry; the refusal counter is
    returned for the payment route (``app.state.payment_notification_metrics``)."""
    registry.register(ChannelCounts(views))
    registry.register(TaskRunFigures(views, tasks))
    return PaymentNotificationRefusals(registry)
