"""Counting a PDF's pages without letting the PDF near the server's memory or time.

A PDF is a program more than a document: compressed object streams that inflate to
gigabytes from a few hundred kilobytes, page trees millions of nodes deep, cross-reference
chains that loop. Reading one inside the server would let any visitor of the contact form
take its memory or a worker thread for as long as the file says. So the PDF is read by
PDFium (the PDF engine of Chromium, maintained and fuzzed) in worker processes of
:mod:`adapters.documents.pdf_page_worker`, each with its address space capped, and every
answer is awaited for a bounded time; a worker that runs out of memory or time is killed
and replaced, and the file is refused as too complex (:class:`PdfTooComplex`).

Workers are started on first use and kept for the next file (starting one costs a
fifth of a second); at most ``workers`` files are read at once, the others wait.
"""

from __future__ import annotations

import json
import mmap
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

DEFAULT_MEMORY_BYTES: Final = 768 * 1_048_576
"""A worker's address space: the interpreter and PDFium (about 150 MiB of it), the file
(up to the 100 MiB upload limit) and what PDFium builds to read it."""
DEFAULT_SECONDS: Final = 10.0
"""How long one file may take; an ordinary scan of a thousand pages takes well under 1 s."""
DEFAULT_WORKERS: Final = 2

_LENGTH: Final = struct.Struct(">Q")
_PACKAGE_ROOT: Final = Path(__file__).resolve().parents[2]
_CHUNK: Final = 1_048_576
_WORKER_ENVIRONMENT: Final = frozenset(
    {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "VIRTUAL_ENV", "PYTHONHOME"}
)


class PdfTooComplex(Exception):
    """Reading the PDF would take more memory or time than any ordinary file needs."""


class _WorkerFailed(Exception):
    pass


class _Worker:
    def __init__(self, memory_bytes: int, command: Sequence[str] | None) -> None:
        # The worker reads hostile files: it gets no secret of the server's environment
        # (database password, keys), only what starting Python needs.
        environment = {
            name: value for name, value in os.environ.items() if name in _WORKER_ENVIRONMENT
        }
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH")))
        )
        self.process = subprocess.Popen(
            list(command)
            if command is not None
            else [sys.executable, "-m", "adapters.documents.pdf_page_worker", str(memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
            cwd=_PACKAGE_ROOT,
        )

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        return self.process.stdin, self.process.stdout

    def ask(self, data: bytes | mmap.mmap | memoryview, seconds: float) -> dict[str, object]:
        deadline = time.monotonic() + seconds
        requests, answers = self._pipes()
        try:
            requests.write(_LENGTH.pack(len(data)))
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK):
                requests.write(view[start : start + _CHUNK])
                if time.monotonic() > deadline:
                    raise _WorkerFailed("time")
            requests.flush()
        except (BrokenPipeError, OSError) as error:
            raise _WorkerFailed("ended") from error
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([answers], [], [], max(remaining, 0))
        if not ready:
            raise _WorkerFailed("time")
        line = answers.readline()
        if not line:
            raise _WorkerFailed("ended")  # killed by the memory cap, or crashed
        try:
            reply: dict[str, object] = json.loads(line)
        except ValueError:
            raise _WorkerFailed("ended") from None  # not our worker's answer: replace it
        if "too_complex" in reply:
            raise _WorkerFailed(str(reply["too_complex"]))
        return reply

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


class PdfPageCounter:
    """Counts pages in worker processes under a memory cap and a time limit."""

    def __init__(
        self,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        seconds: float = DEFAULT_SECONDS,
        workers: int = DEFAULT_WORKERS,
        worker_command: Sequence[str] | None = None,
    ) -> None:
        """``worker_command`` replaces the worker (tests: one that never answers)."""
        self.memory_bytes = memory_bytes
        self._command = worker_command
        self.seconds = seconds
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self.replaced = 0
        """Workers killed for a file too complex (or lost): for tests and the log."""

    def pages(self, data: bytes | mmap.mmap | memoryview) -> int | None:
        """The PDF's page count; ``None`` if PDFium cannot open it (damaged, encrypted).

        Raises :class:`PdfTooComplex` when reading it would exceed the limits."""
        with self._slots:
            worker = self._take()
            try:
                reply = worker.ask(data, self.seconds)
            except _WorkerFailed as failure:
                worker.stop()
                with self._lock:
                    self.replaced += 1
                reason = "time" if str(failure) == "time" else "memory"
                msg = (
                    f"reading the PDF would take more {reason} than allowed "
                    f"({self.seconds:g} s, {self.memory_bytes // 1_048_576} MiB)"
                )
                raise PdfTooComplex(msg) from None
            self._give_back(worker)
        pages = reply.get("pages")
        return pages if isinstance(pages, int) else None

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                worker.stop()
        return _Worker(self.memory_bytes, self._command)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def idle_workers(self) -> list[_Worker]:
        """The workers waiting for the next file (for tests)."""
        with self._lock:
            return list(self._idle)

    def close(self) -> None:
        """Stop the idle workers (the next file starts a new one)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


_default: PdfPageCounter | None = None
_default_lock = threading.Lock()


def default_counter() -> PdfPageCounter:
    """The process's counter, with the default limits."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PdfPageCounter()
        return _default
