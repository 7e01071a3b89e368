"""Monitoring: the runs of the command-line tasks, and the metrics read from the stores.

- :mod:`adapters.monitoring.runs`: ``akte audit verify``, ``akte deadlines tick`` and
  ``akte appointments tick`` run as processes of their own; each writes its last run
  (when, result, steps) into a small table of the views store, where the server reads it.
- :mod:`adapters.monitoring.metrics`: the Prometheus collectors of ``/metrics`` for those
  runs and for the counts of mails, payment notifications and erasures (read model
  :mod:`projections.figures.monitoring_counts`), and the server's own count of refused
  payment notifications.

See docs/operations/monitoring.md.
"""
