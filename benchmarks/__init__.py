"""Benchmarks of Akte: run ``bin/bench`` (``python -m benchmarks.service_cost``).

The figures and what they say are in ``docs/performance/``.
"""
