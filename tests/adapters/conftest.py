"""Fixtures of the adapter tests: a clean environment for the command line and settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only what the test sets: no AKTE_* from the caller, no .env file in the directory."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AKTE_"):
            monkeypatch.delenv(name)
    return tmp_path
