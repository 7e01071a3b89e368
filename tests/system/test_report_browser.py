"""The yearly report's HTML page in a real headless Chromium (Debian's ``chromium``).

Renders the page to a screenshot, to the DOM as Chromium built it, and to an A4 PDF,
and checks that the figures and the charts are really there and painted. The
screenshot is kept at ``test-output/yearly-report.png`` (the PDF and the HTML beside
it) so a person can look at it. Without Chromium the test is skipped, saying so;
under ``CI=true`` a missing Chromium is a failure (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from adapters.reports.yearly_report import (
    charted_figures,
    compared_figures,
    format_value,
    german_summary,
    report_html,
)
from tests.adapters.reports.test_yearly_report import TagCollector, parse, sample_report
from tests.support.browser import chromium_path as chromium

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
WIDTH, HEIGHT = 1280, 2400
TIMEOUT_SECONDS = 120
# The colours of this year's and last year's bars (report_formats' CSS): found in the
# screenshot, they prove the charts were painted, not just put in the DOM.
NOW_RGB, BEFORE_RGB = bytes.fromhex("1f4e79"), bytes.fromhex("a9c1da")


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        binary,
        "--headless",
        # As root and in containers Chromium's sandbox cannot start, and /dev/shm is
        # often too small for its shared memory.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        *args,
    ]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
            env={**os.environ, "HOME": str(profile)},
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(
            f"Chromium did not finish in {TIMEOUT_SECONDS} s: {' '.join(command)}\n{timeout}"
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


def png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and the unfiltered rows of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, []
    width = height = bytes_per_pixel = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8, depth
            assert interlace == 0, interlace
            bytes_per_pixel = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            chunks.append(body)
    raw = zlib.decompress(b"".join(chunks))
    stride = width * bytes_per_pixel
    assert len(raw) == height * (stride + 1)
    rows: list[bytes] = []
    previous = bytearray(stride)
    bpp = bytes_per_pixel
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + (left + previous[i]) // 2) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        rows.append(bytes(line))
        previous = line
    return width, height, bytes_per_pixel, rows


def colours(rows: Sequence[bytes], bytes_per_pixel: int) -> set[bytes]:
    return {row[i : i + 3] for row in rows[::2] for i in range(0, len(row), bytes_per_pixel)}


def test_report_page_in_headless_chromium(tmp_path: Path) -> None:
    binary = chromium()
    report = sample_report()
    page = tmp_path / "yearly-report.html"
    page.write_text(report_html(report), encoding="utf-8")
    url = page.as_uri()
    profile = tmp_path / "profile"
    screenshot = tmp_path / "yearly-report.png"
    pdf = tmp_path / "yearly-report.pdf"

    run_chromium(
        binary, profile, f"--screenshot={screenshot}", f"--window-size={WIDTH},{HEIGHT}", url
    )
    dom = run_chromium(binary, profile, "--dump-dom", url).stdout.decode("utf-8")
    run_chromium(binary, profile, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", url)

    # The DOM Chromium built holds every figure, the summary and every chart.
    built: TagCollector = parse(dom)
    text = " ".join(built.text)
    assert german_summary(report) in text
    for figure in report.figures:
        assert figure.label in text
        assert format_value(figure.value, figure.unit) in text
    month_charts = built.find("svg", class_="chart chart-month")
    assert [chart["data-figure"] for chart in month_charts] == [
        figure.key for figure in charted_figures(report)
    ]
    assert len(built.find("svg", class_="chart chart-comparison")) == 1
    assert len(built.find("g")) == len(compared_figures(report))
    assert built.find("svg", class_="chart chart-breakdown")
    assert len(built.find("rect")) > 24 * len(month_charts)
    assert not built.find("parsererror")

    # The screenshot is a real picture of the page, with the bars painted.
    data = screenshot.read_bytes()
    assert len(data) > 50_000, "a near-empty screenshot"
    width, height, bytes_per_pixel, rows = png_pixels(data)
    assert (width, height) == (WIDTH, HEIGHT)
    seen = colours(rows, bytes_per_pixel)
    assert len(seen) > 50, "the screenshot is (almost) one colour"
    assert NOW_RGB in seen, "no bar of this year was painted"
    assert BEFORE_RGB in seen, "no bar of the year before was painted"
    assert any(row != rows[0] for row in rows)

    # Printed, it is A4 (595 x 842 pt) and more than one page.
    printed = pdf.read_bytes()
    assert printed.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", printed)
    assert boxes, "no page in the PDF"
    for box_width, box_height in boxes:
        assert abs(float(box_width) - 595.3) < 2
        assert abs(float(box_height) - 841.9) < 2
    assert len(boxes) >= 2

    OUTPUT.mkdir(exist_ok=True)
    kept = OUTPUT / "yearly-report.png"
    shutil.copyfile(screenshot, kept)
    shutil.copyfile(pdf, OUTPUT / "yearly-report.pdf")
    shutil.copyfile(page, OUTPUT / "yearly-report.html")
    print(f"screenshot of the yearly report: {kept}")
