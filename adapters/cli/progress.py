"""The one progress display of the ``akte`` commands: a line on stderr while work goes on.

On a terminal it is a rich progress bar (share done, time taken) with the command's own
line beside it, drawn in place at most four times a second and left standing when the
work is done. Off a terminal (logs, CI, a pipe a script reads) it prints plain lines: one
per tenth of the work, or only when a pass is done, so logs stay short and a script can
follow them line by line.

The commands' work reports its progress through its own callbacks (the projection
engine's :class:`~projections.engine.Progress`, the simulator's ``SimulationProgress``,
the scan import's ``ImportProgress``, the demo loader's and the chain verifier's counts);
the adapters below turn each into the display's line. A line is composed only when it is
shown: composing one may cost a query (the demo load counts the events stored).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column

if TYPE_CHECKING:
    # Named for the types only: a command showing progress loads no other command's code.
    from adapters.documents.scan_import import ImportProgress
    from adapters.simulation.simulator import SimulationProgress
    from projections.engine import Progress as ProjectionProgress

_INTERVAL: Final = 0.25
"""Seconds between two redraws on a terminal (the last one is always drawn)."""
_SHARE_STEPS: Final = 1000
"""A share (0..1) as whole steps of done work."""

LinesOffTerminal = Literal["tenths", "finished"]


class ProgressDisplay:
    """One progress line on ``stream`` (stderr unless told), for one command's run.

    Call :meth:`update` as the work goes on; when ``done`` reaches ``total`` the line is
    finished (on a terminal, the bar stays with its last line and a newline). Call
    :meth:`end_line` (or leave the ``with`` block) when the work stops early, so a
    message after it starts on a line of its own. ``done`` and ``total`` are the last
    counts reported, for a message after an interruption.
    """

    def __init__(
        self, stream: TextIO | None = None, *, off_terminal: LinesOffTerminal = "tenths"
    ) -> None:
        self._stream = sys.stderr if stream is None else stream
        self._terminal = self._stream.isatty()
        self._off_terminal = off_terminal
        self._last_shown = 0.0
        self._next_tenth = 1
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self.done = 0
        self.total = 0

    def update(self, done: int, total: int, line: Callable[[], str]) -> None:
        """``done`` of ``total``; ``line`` says it in words (called only when shown)."""
        self.done, self.total = done, total
        finished = done >= total
        if self._terminal:
            now = time.monotonic()
            if not finished and now - self._last_shown < _INTERVAL:
                return
            self._last_shown = now
            self._draw(done, total, line())
            if finished:
                self.end_line()
            return
        if not finished and (
            self._off_terminal == "finished" or done * 10 < self._next_tenth * total
        ):
            return
        self._next_tenth = done * 10 // max(total, 1) + 1
        self._stream.write(line() + "\n")
        self._stream.flush()

    def end_line(self) -> None:
        """Leave the line as it stands and start the next one (nothing off a terminal)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end_line()

    def _draw(self, done: int, total: int, line: str) -> None:
        if self._bar is None or self._task is None:
            # Bar, share and time keep their width; a long line wraps on a narrow terminal.
            self._bar = Progress(
                BarColumn(bar_width=20, table_column=Column(no_wrap=True)),
                TaskProgressColumn(table_column=Column(no_wrap=True)),
                TimeElapsedColumn(table_column=Column(no_wrap=True)),
                TextColumn("{task.description}", markup=False, table_column=Column()),
                console=Console(file=self._stream),
                # Drawn when update() says so: no thread of its own writing to the terminal,
                # and stdout (a report, JSON) is never routed through the progress display.
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=total)
        self._bar.update(self._task, completed=done, total=total, description=line, refresh=True)


# ------------------------------------------------------- the commands' progress


class DemoLoadProgress:
    """``akte demo``: cases loaded of the demo office's, events stored so far, their rate."""

    def __init__(self, display: ProgressDisplay, count_events: Callable[[], int]) -> None:
        self._display = display
        self._count_events = count_events
        self._started = time.monotonic()

    @property
    def done(self) -> int:
        return self._display.done

    def __call__(self, done: int, total: int) -> None:
        def line() -> str:
            events = self._count_events()
            rate = events / max(time.monotonic() - self._started, 1e-6)
            return f"loaded {done:,}/{total:,} cases, {events:,} events, {rate:,.0f} events/s"

        self._display.update(done, total, line)


def projection_progress(
    display: ProgressDisplay, label: str = "rebuilt"
) -> Callable[[ProjectionProgress], None]:
    """A rebuild's or catch-up's events, e.g. ``rebuilt 1,200/5,000 events (24%), ...``."""

    def update(progress: ProjectionProgress) -> None:
        def line() -> str:
            share = 100 * progress.done / max(progress.total, 1)
            return (
                f"{label} {progress.done:,}/{progress.total:,} events ({share:.0f}%), "
                f"{progress.events_per_second:,.0f} events/s"
            )

        display.update(progress.done, progress.total, line)

    return update


def import_progress(display: ProgressDisplay) -> Callable[[ImportProgress], None]:
    """``akte import-scans``: legacy files, documents, megabytes and their rates."""

    def update(progress: ImportProgress) -> None:
        def line() -> str:
            seconds = max(progress.seconds, 1e-6)
            megabytes = progress.size_bytes / 1_000_000
            return (
                f"imported {progress.done:,}/{progress.total:,} legacy files, "
                f"{progress.documents:,} documents, {megabytes:,.1f} MB, "
                f"{progress.failed:,} failed, {progress.done / seconds:,.0f} files/s, "
                f"{megabytes / seconds:,.1f} MB/s"
            )

        display.update(progress.done, progress.total, line)

    return update


def simulation_progress(display: ProgressDisplay) -> Callable[[SimulationProgress], None]:
    """``akte simulate``: business time reached, commands and events and their rates."""

    def update(progress: SimulationProgress) -> None:
        def line() -> str:
            return (
                f"simulated up to {progress.simulated_day.isoformat()} ({progress.share:.0%}): "
                f"{progress.commands:,} commands, {progress.events:,} events, "
                f"{progress.commands_per_second:,.0f} commands/s, "
                f"{progress.events_per_second:,.0f} events/s"
            )

        # The simulator counts business time as a share; the display counts steps.
        done = _SHARE_STEPS if progress.share >= 1.0 else int(progress.share * _SHARE_STEPS)
        display.update(done, _SHARE_STEPS, line)

    return update


class VerifyProgress:
    """``akte audit verify``: both passes (log and streams, which run side by side) on one
    line, and the rate of events checked by both."""

    _PASSES: Final = ("log", "streams")

    def __init__(self, display: ProgressDisplay) -> None:
        self._display = display
        self._started = time.monotonic()
        self._counts = dict.fromkeys(self._PASSES, (0, 0))
        self._finished: set[str] = set()
        # The stream pass reports from its own thread.
        self._lock = threading.Lock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self._counts[phase] = (done, total)
            if done >= total:
                self._finished.add(phase)
            counts = dict(self._counts)
            checked = min(done for done, _ in counts.values())
            elapsed = max(time.monotonic() - self._started, 1e-9)

            def line() -> str:
                passes = ", ".join(
                    f"{name} {done:,}/{total:,}" for name, (done, total) in counts.items()
                )
                return f"verify {passes} events, {checked / elapsed:,.0f} events/s"

            done_all = sum(done for done, _ in counts.values())
            total_all = sum(total for _, total in counts.values())
            if len(self._finished) < len(self._PASSES):
                total_all = max(total_all, done_all + 1)  # finished only when both are
            self._display.update(done_all, total_all, line)
