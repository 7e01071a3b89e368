"""Akte's domain model: aggregates, events, value types and domain errors.

Pure: no I/O, no web framework, no database driver and no clock reads. Time and actor
are passed in by the application service as an :class:`~domain.acts.Act`.
"""
