"""Log lines go to the standard error of the moment they are written."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from adapters.logging_setup import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


@pytest.mark.usefixtures("restored_logging")
def test_a_swapped_and_closed_stderr_does_not_break_logging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A test runner captures each test's stderr and closes the capture afterwards; a
    # server thread of a later test then logs (its access lines).
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging(json_logs=False, level="INFO")
    logging.getLogger("akte.test").warning("before the swap")
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    first.close()

    logging.getLogger("akte.test").warning("after the swap")

    written = second.getvalue()
    assert "Logging error" not in written
    assert [line for line in written.splitlines() if line.endswith("after the swap")]
    assert "before the swap" not in written
