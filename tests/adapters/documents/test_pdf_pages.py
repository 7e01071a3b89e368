"""Pages counted by PDFium in worker processes with capped memory and time: hostile PDFs
are refused or answered within bounds, and never inflate in the server."""

from __future__ import annotations

import io
import json
import resource
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.documents.inspection import FileTooComplex, UnreadableFile, inspect_file
from adapters.documents.pdf_pages import PdfPageCounter, PdfTooComplex
from adapters.simulation.legacy_scans import make_pdf
from benchmarks.hostile_pdfs import (
    deeply_nested,
    looping_page_tree,
    object_stream_bomb,
    page_chain,
    wide_page_tree,
)
from domain.case_file import MAX_PAGES

MIB = 1_048_576


@pytest.fixture
def counter() -> Iterator[PdfPageCounter]:
    made = PdfPageCounter()
    yield made
    made.close()


@pytest.mark.parametrize("object_streams", [False, True], ids=["xref-table", "object-streams"])
def test_ordinary_pdfs_are_counted(counter: PdfPageCounter, object_streams: bool) -> None:
    for pages in (1, 3, 40):
        assert counter.pages(make_pdf(pages, object_streams=object_streams)) == pages
    assert counter.replaced == 0


def test_a_bomb_inflates_in_the_worker_only_and_is_refused(counter: PdfPageCounter) -> None:
    bomb = object_stream_bomb(1024, layers=2)  # a few KiB that inflate to 1 GiB
    assert len(bomb) < 16 * 1024
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    with pytest.raises(FileTooComplex, match=r"more (memory|time) than allowed"):
        inspect_file(io.BytesIO(bomb), max_bytes=10 * MIB, counter=counter)

    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The server never holds the inflation (1 GiB): only the worker, which was replaced.
    assert peak_after - peak_before < 64 * MIB
    assert counter.replaced == 1
    assert counter.pages(make_pdf(2)) == 2  # the next file gets a fresh worker


def test_a_small_bomb_within_the_limits_is_read(counter: PdfPageCounter) -> None:
    assert counter.pages(object_stream_bomb(8)) == 1


@pytest.mark.parametrize(
    ("pdf", "pages"),
    [
        pytest.param(looping_page_tree(), 99_999, id="page-tree-loop"),
        pytest.param(deeply_nested(200_000), 1, id="nested-200000-deep"),
        pytest.param(page_chain(50_000), 1, id="pages-chain-50000-deep"),
        pytest.param(wide_page_tree(MAX_PAGES + 1), None, id="more-pages-than-allowed"),
    ],
)
def test_crafted_structures_are_answered_within_the_limits(
    counter: PdfPageCounter, pdf: bytes, pages: int | None
) -> None:
    if pages is None:
        with pytest.raises(UnreadableFile):
            inspect_file(io.BytesIO(pdf), max_bytes=len(pdf), counter=counter)
    else:
        assert inspect_file(io.BytesIO(pdf), max_bytes=len(pdf), counter=counter).page_count == (
            pages
        )


def test_a_worker_that_does_not_answer_in_time_is_replaced() -> None:
    never_answers = [sys.executable, "-c", "import time; time.sleep(600)"]
    stuck = PdfPageCounter(seconds=0.5, worker_command=never_answers)
    try:
        with pytest.raises(PdfTooComplex, match="more time than allowed"):
            stuck.pages(make_pdf(1))
        assert stuck.replaced == 1
    finally:
        stuck.close()


def test_a_worker_that_died_meanwhile_is_replaced_silently(counter: PdfPageCounter) -> None:
    assert counter.pages(make_pdf(1)) == 1
    for worker in counter.idle_workers():
        worker.process.kill()
        worker.process.wait()

    assert counter.pages(make_pdf(5)) == 5


def test_files_read_at_once_each_get_their_own_answer(counter: PdfPageCounter) -> None:
    answers: dict[int, int | None] = {}

    def count(pages: int) -> None:
        answers[pages] = counter.pages(make_pdf(pages, marker=str(pages)))

    threads = [threading.Thread(target=count, args=(pages,)) for pages in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == {pages: pages for pages in range(1, 7)}


def test_what_pdfium_cannot_open_is_unreadable(counter: PdfPageCounter) -> None:
    assert counter.pages(b"%PDF-1.4\nno pages here\n%%EOF\n") is None
    assert counter.replaced == 0


def test_the_worker_gets_none_of_the_servers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKTE_POSTGRES_PASSWORD", "secret-of-the-server")
    monkeypatch.setenv("AKTE_MASTER_KEYS", "k1:secret")
    seen = tmp_path / "environment.json"
    telling_worker = [
        sys.executable,
        "-c",
        "import json, os, struct, sys\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(sorted(os.environ)))\n"
        "size = struct.unpack('>Q', sys.stdin.buffer.read(8))[0]\n"
        "sys.stdin.buffer.read(size)\n"
        "sys.stdout.write('{\"pages\": 1}\\n')\n"
        "sys.stdout.flush()\n",
    ]
    counter = PdfPageCounter(worker_command=telling_worker)
    try:
        assert counter.pages(make_pdf(1)) == 1
    finally:
        counter.close()

    names = set(json.loads(seen.read_text()))
    assert "PYTHONPATH" in names
    assert not any(name.startswith("AKTE_") for name in names)
