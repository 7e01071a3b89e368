"""Printable pages as PDF, printed by a headless Chromium (Debian's ``chromium``).

The yearly report is an HTML page laid out for A4 (its print stylesheet); Chromium prints
it exactly as a person printing it from the browser would, so the PDF and the page
cannot drift apart. Chromium is the browser the tests already drive; a server that never
prints PDFs does not need it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

TIMEOUT_SECONDS: Final = 120


class PdfUnavailable(Exception):
    """No Chromium to print with, or it failed: the message says what to do."""


def chromium_binary() -> str:
    found = (
        os.environ.get("AKTE_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if found is None:
        raise PdfUnavailable(
            "printing a PDF needs Chromium (apt-get install -y chromium, or AKTE_CHROMIUM "
            "naming the binary); --format html gives the same page to print from a browser"
        )
    return found


def html_to_pdf(html: str) -> bytes:
    """``html`` (a self-contained page: no files besides it) printed to PDF."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="akte-pdf-") as scratch:
        folder = Path(scratch)
        page, printed = folder / "page.html", folder / "page.pdf"
        page.write_text(html, encoding="utf-8")
        command = [
            binary,
            "--headless",
            # Root and containers cannot start Chromium's sandbox; the page is Akte's own.
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            # Only the page itself: a report must not reach any host while printing.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={folder / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={printed}",
            page.as_uri(),
        ]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
                env={**os.environ, "HOME": str(folder)},
            )
        except subprocess.TimeoutExpired:
            raise PdfUnavailable(f"Chromium did not print within {TIMEOUT_SECONDS} s") from None
        if result.returncode != 0 or not printed.exists():
            detail = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise PdfUnavailable(f"Chromium could not print the page: {' '.join(detail)}")
        return printed.read_bytes()
