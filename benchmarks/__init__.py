"""Benchmarks of Akte: run ``bin/bench`` (``python -m benchmarks.core``); see README.md."""
