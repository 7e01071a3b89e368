"""The progress display off a terminal: plain lines a log keeps and a script can follow."""

from __future__ import annotations

import io
from collections.abc import Callable

from adapters.cli.progress import ProgressDisplay, VerifyProgress


def test_off_a_terminal_a_line_per_tenth_and_the_last() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream)
    asked: list[int] = []

    def line_for(done: int) -> Callable[[], str]:
        def line() -> str:
            asked.append(done)
            return f"done {done}"

        return line

    for done in range(1, 41):
        display.update(done, 40, line_for(done))
    display.end_line()

    assert stream.getvalue().splitlines() == [f"done {4 * tenth}" for tenth in range(1, 11)]
    assert asked == [4 * tenth for tenth in range(1, 11)]  # a line is composed only when shown
    assert (display.done, display.total) == (40, 40)


def test_off_a_terminal_verify_prints_one_line_when_both_passes_are_finished() -> None:
    stream = io.StringIO()
    progress = VerifyProgress(ProgressDisplay(stream, off_terminal="finished"))

    # The passes run side by side: their reports interleave, and the stream pass may end
    # first; the line is printed once, when both are done.
    for done in range(0, 101, 10):
        progress("streams", done, 100)
        if done <= 90:
            progress("log", done, 100)
    assert stream.getvalue() == ""
    progress("log", 100, 100)

    lines = stream.getvalue().splitlines()
    assert [line.split(" events,")[0] for line in lines] == [
        "verify log 100/100, streams 100/100",
    ]
    assert all(line.endswith(" events/s") for line in lines)
