"""Public pages benchmark: response time under 50 concurrent visitors, and page weight.

Run ``bin/bench-pages`` (or ``python -m benchmarks.pages``) from the repository root::

    bin/bench-pages [--visitors 50] [--requests 20] [--think-ms 0] [--pages /,/booking]
                    [--json OUT]

It starts ``akte serve`` (a separate process, exactly as deployed) on a fresh SQLite
store and measures the entry page of each public service that exists (``/``,
``/booking``, ``/contact``, ``/declaration``; ``--pages`` names others instead; the later
steps and status pages need a visitor's answers or reference):

* response time: ``--visitors`` threads, each a visitor with its own connection, ask for
  the page ``--requests`` times, all starting together after a warm-up; p50 and p99 of
  every response's time until its last byte, in milliseconds. Between two requests a
  visitor reads for ``--think-ms`` (each pause drawn between half and one and a half
  times that); the default 0 is a closed loop, every visitor asking again the moment
  the page arrives: the hardest case for that many visitors, which measures what one
  server process can take rather than what a person waits;
* weight: the bytes of the page's HTML and of every stylesheet and script it links
  (uncompressed, as the server sends them without ``Accept-Encoding``).

Each figure is printed next to its target (p99 < 50 ms, weight < 100 KB) with MET or
MISSED; any answer other than 200 is an error and makes the exit code 1. The load comes
from this process, so on a small machine client and server share the cores. Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Final
from urllib.parse import urljoin, urlsplit

import httpx2 as httpx

from adapters.cli.support import positive_int
from adapters.http.pages.site import page_paths
from adapters.settings import Settings
from benchmarks.cluster import ApiProcess
from benchmarks.loadtest import percentile

P99_TARGET_MS: Final = 50.0
WEIGHT_TARGET_BYTES: Final = 100 * 1024
WARM_UP_REQUESTS: Final = 20
ENTRY_PAGES: Final = ("/", "/booking", "/contact", "/declaration")
ACCEPT_LANGUAGE: Final = {"Accept-Language": "de-DE,de;q=0.9"}


class _Assets(HTMLParser):
    """The stylesheets and scripts an HTML page links."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and (values.get("rel") or "").lower() == "stylesheet" and values["href"]:
            self.urls.append(values["href"])
        elif tag == "script" and values.get("src"):
            self.urls.append(values["src"] or "")


@dataclass
class PageFigures:
    path: str
    requests: int = 0
    errors: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    html_bytes: int = 0
    asset_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def weight(self) -> int:
        return self.html_bytes + sum(self.asset_bytes.values())

    @property
    def p99_met(self) -> bool:
        return self.p99_ms < P99_TARGET_MS

    @property
    def weight_met(self) -> bool:
        return self.weight < WEIGHT_TARGET_BYTES


def public_pages() -> list[str]:
    """The entry page of every public service that exists (the start page, booking,
    contact, declaration): what a visitor opens first, without answers of earlier steps."""
    existing = page_paths()
    return [path for path in ENTRY_PAGES if path in existing]


def measure_weight(client: httpx.Client, figures: PageFigures) -> None:
    page = client.get(figures.path, headers={**ACCEPT_LANGUAGE, "Accept-Encoding": "identity"})
    if page.status_code != 200:
        figures.errors += 1
        return
    figures.html_bytes = len(page.content)
    assets = _Assets()
    assets.feed(page.text)
    for url in dict.fromkeys(assets.urls):
        absolute = urljoin(str(page.url), url)
        if urlsplit(absolute).netloc != urlsplit(str(page.url)).netloc:
            # A page must load nothing from another host; weigh it as an error instead.
            figures.errors += 1
            continue
        asset = client.get(absolute, headers={"Accept-Encoding": "identity"})
        if asset.status_code != 200:
            figures.errors += 1
            continue
        figures.asset_bytes[urlsplit(absolute).path] = len(asset.content)


def measure_latency(
    base_url: str, figures: PageFigures, visitors: int, requests: int, think_ms: int
) -> None:
    latencies: list[list[float]] = [[] for _ in range(visitors)]
    errors = [0] * visitors
    start = threading.Barrier(visitors)

    def visitor(index: int) -> None:
        with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as client:
            for _ in range(WARM_UP_REQUESTS // visitors + 1):
                client.get(figures.path, headers=ACCEPT_LANGUAGE)
            start.wait()
            if think_ms:
                # Visitors arrive at their own moments, not in lockstep with each other.
                time.sleep(think_ms * random.random() / 1000)
            for _ in range(requests):
                began = time.perf_counter()
                response = client.get(figures.path, headers=ACCEPT_LANGUAGE)
                _ = response.content
                latencies[index].append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    errors[index] += 1
                if think_ms:
                    time.sleep(think_ms * random.uniform(0.5, 1.5) / 1000)

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(visitors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples = [sample for own in latencies for sample in own]
    figures.requests = len(samples)
    figures.errors += sum(errors)
    figures.p50_ms = round(percentile(samples, 0.50), 2)
    figures.p99_ms = round(percentile(samples, 0.99), 2)


def _verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def print_table(results: Sequence[PageFigures], visitors: int, think_ms: int) -> None:
    mode = f"reading {think_ms} ms between pages" if think_ms else "closed loop, no pause"
    print(f"Public pages, {visitors} concurrent visitors ({mode}), akte serve on SQLite")
    print(
        f"{'page':<16}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}  {'p99 < 50 ms':<12}"
        f"{'weight KB':>10}  {'weight < 100 KB':<15}{'errors':>7}"
    )
    for page in results:
        print(
            f"{page.path:<16}{page.requests:>9,}{page.p50_ms:>9.1f}{page.p99_ms:>9.1f}  "
            f"{_verdict(page.p99_met):<12}{page.weight / 1024:>10.1f}  "
            f"{_verdict(page.weight_met):<15}{page.errors:>7}"
        )
    for page in results:
        parts = ", ".join(f"{path} {size:,} B" for path, size in page.asset_bytes.items())
        print(f"  {page.path}: HTML {page.html_bytes:,} B" + (f"; {parts}" if parts else ""))


def run(pages: Sequence[str], visitors: int, requests: int, think_ms: int) -> list[PageFigures]:
    with tempfile.TemporaryDirectory(prefix="akte-bench-pages-") as scratch:
        settings = Settings(store="sqlite", data_dir=Path(scratch) / "data")
        # Every visitor here comes from 127.0.0.1: the per-address limits would refuse them.
        no_limits = {name: "" for name in Settings.model_fields if name.startswith("rate_limit_")}
        server = ApiProcess(settings, Path(scratch) / "serve.log", **no_limits)
        server.start()
        try:
            server.wait_ready()
            results = []
            with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as client:
                for path in pages:
                    figures = PageFigures(path)
                    measure_weight(client, figures)
                    measure_latency(server.base_url, figures, visitors, requests, think_ms)
                    results.append(figures)
            server.check_alive()
            return results
        finally:
            server.stop()


def _page_list(value: str) -> list[str]:
    pages = [page.strip() for page in value.split(",") if page.strip()]
    if not pages or not all(page.startswith("/") for page in pages):
        raise argparse.ArgumentTypeError("a comma-separated list of paths, each starting with /")
    return pages


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bin/bench-pages", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--visitors", type=positive_int, default=50, help="concurrent visitors")
    parser.add_argument("--requests", type=positive_int, default=20, help="requests per visitor")
    parser.add_argument(
        "--think-ms", type=int, default=0, help="a visitor's pause between pages (0: none)"
    )
    parser.add_argument("--pages", type=_page_list, help="paths to measure (default: every page)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pages = args.pages or public_pages()
    results = run(pages, args.visitors, args.requests, args.think_ms)
    print_table(results, args.visitors, args.think_ms)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "visitors": args.visitors,
                    "requests_per_visitor": args.requests,
                    "think_ms": args.think_ms,
                    "targets": {"p99_ms": P99_TARGET_MS, "weight_bytes": WEIGHT_TARGET_BYTES},
                    "pages": [
                        {
                            **asdict(page),
                            "weight_bytes": page.weight,
                            "p99_met": page.p99_met,
                            "weight_met": page.weight_met,
                        }
                        for page in results
                    ],
                },
                indent=2,
            )
        )
    return 1 if any(page.errors for page in results) else 0


if __name__ == "__main__":
    sys.exit(main())
