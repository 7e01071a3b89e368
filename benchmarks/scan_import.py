"""Scan import benchmark: legacy files, documents and megabytes per second.

Run ``bin/bench-import`` (or ``python -m benchmarks.scan_import``) from the repository
root::

    bin/bench-import [--folders 2000] [--page-kb 30] [--stores sqlite,postgres]
                     [--group-events 1,5000] [--repeats 3] [--json OUT]

A batch of ``--folders`` synthetic legacy files is written once (not timed): each a folder
with a manifest and 1-3 PDFs of 1-12 pages, every page carrying ``--page-kb`` KB of
incompressible bytes in place of a scanned image (a black-and-white A4 page at 300 dpi
compresses to some 30-60 KB). Then, ``--repeats`` times per store, on an empty store:

* **import**: ``import_scans`` over the whole batch, as ``akte import-scans`` runs it:
  manifest checks, each PDF read, hashed and its pages counted, stored (fsync, rename),
  and each legacy file's case file opened with its documents in one transaction;
* **re-run**: the same batch again, which finds everything on file and imports nothing
  (what resuming costs for the part already done).

Each ``--group-events`` value is a way of writing: 1 commits each legacy file on its own
(the import before groups of commands), 5000 writes the events of many legacy files in
one transaction (``service.grouped``, the import's default). All are run side by side,
interleaved, on the same batch; the report gives the ratio.

Figures are medians over the repeats, with the min..max spread. PostgreSQL keeps the
documents in its own tables (``AKTE_DOCUMENT_STORE=auto``), SQLite in a directory.

**The bound on PostgreSQL** (``--copy-bound``, on by default with PostgreSQL): in each
repeat, the batch's PDF bytes are also read and sent with one plain ``COPY … FROM STDIN
(FORMAT BINARY)`` into a ``bytea`` table (``STORAGE EXTERNAL``, as the document chunks),
committed once: no checks, no encryption, no events. What the bytes alone cost through
the protocol into the table; no import of them can be faster. A second bound does what
the document store must do to every byte before that: hash it twice (the check, and the
check that the file did not change while it was stored) and seal it with AES-GCM in
64 KiB segments under a fresh key, inside the timed COPY. No import that checks and
encrypts the documents can be faster than that.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql

from adapters.bootstrap import build_service
from adapters.cli.support import positive_int
from adapters.documents.encryption import SEGMENT_BYTES
from adapters.documents.scan_import import ImportReport, import_scans
from adapters.simulation.legacy_scans import write_legacy_batch
from benchmarks.harness import (
    BenchConfig,
    PostgresParams,
    StoreName,
    add_postgres_arguments,
    fresh_store,
    machine_info,
    postgres_from,
    postgres_server_version,
    store_names,
    write_json,
)
from service_unit_of_work import DEFAULT_GROUP_EVENTS

OFFICE: Final = "abh-musterstadt"
STORES: Final[tuple[StoreName, ...]] = ("sqlite", "postgres")


@dataclass(frozen=True)
class ImportBenchConfig:
    folders: int = 2000
    page_kb: int = 30
    stores: tuple[StoreName, ...] = STORES
    group_events: tuple[int, ...] = (1, DEFAULT_GROUP_EVENTS)
    repeats: int = 3
    seed: int = 11
    postgres: PostgresParams = field(default_factory=PostgresParams)
    tmp_root: Path | None = None
    progress: bool = True
    copy_bound: bool = True


@dataclass(frozen=True)
class CopyBound:
    """One plain COPY of the batch's PDF bytes into a bytea table, committed once;
    ``sealed``: each PDF hashed twice and sealed first, as every import must."""

    megabytes: float
    seconds: float
    sealed: bool = False

    @property
    def megabytes_per_second(self) -> float:
        return self.megabytes / self.seconds


@dataclass(frozen=True)
class ImportRun:
    store: str
    group_events: int
    folders: int
    documents: int
    pages: int
    megabytes: float
    seconds: float
    rerun_seconds: float
    cpu_seconds: float = 0.0
    """CPU time of this process during the import (the server's not included)."""

    @property
    def folders_per_second(self) -> float:
        return self.folders / self.seconds

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.megabytes / self.seconds

    @property
    def rerun_folders_per_second(self) -> float:
        return self.folders / self.rerun_seconds


@dataclass
class ImportBenchReport:
    parameters: dict[str, Any]
    machine: dict[str, Any]
    batch: dict[str, Any]
    runs: list[ImportRun] = field(default_factory=list)
    bounds: list[CopyBound] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "machine": self.machine,
            "batch": self.batch,
            "runs": [asdict(run) for run in self.runs],
            "copy_bound": [asdict(bound) for bound in self.bounds],
            "notes": self.notes,
        }


def _progress(config: ImportBenchConfig, message: str) -> None:
    if config.progress:
        print(message, file=sys.stderr, flush=True)


def _one_run(
    store: StoreName, group_events: int, config: ImportBenchConfig, batch: Path
) -> ImportRun:
    core_config = BenchConfig(postgres=config.postgres, tmp_root=config.tmp_root)
    with fresh_store(store, core_config) as settings:
        service = build_service(settings)
        try:
            cpu = time.process_time()
            report: ImportReport = import_scans(
                service, batch, office_id=OFFICE, group_events=group_events
            )
            cpu_seconds = time.process_time() - cpu
            if report.failures or report.imported != config.folders:
                msg = f"the benchmark batch did not import cleanly: {report.as_json()}"
                raise RuntimeError(msg)
            started = time.perf_counter()
            rerun = import_scans(service, batch, office_id=OFFICE)
            rerun_seconds = time.perf_counter() - started
            if rerun.imported:
                msg = "the re-run imported something: the import is not idempotent"
                raise RuntimeError(msg)
        finally:
            service.close()
    return ImportRun(
        store=store,
        group_events=group_events,
        folders=report.folders,
        documents=report.documents,
        pages=report.pages,
        megabytes=report.size_bytes / 1_000_000,
        seconds=report.seconds,
        rerun_seconds=rerun_seconds,
        cpu_seconds=cpu_seconds,
    )


def sealed_like_the_store(data: bytes) -> bytes:
    """What the document store must do to each byte before it sends it: hash it twice
    (the check, and the check that the file did not change while it was sealed) and
    seal it with AES-GCM in segments, under a fresh data key."""
    hashlib.sha256(data).digest()
    hashlib.sha256(data).digest()
    cipher = AESGCM(AESGCM.generate_key(bit_length=256))
    aad = b"akte-bench-bound"
    return b"".join(
        cipher.encrypt(index.to_bytes(12, "big"), data[start : start + SEGMENT_BYTES], aad)
        for index, start in enumerate(range(0, max(len(data), 1), SEGMENT_BYTES))
    )


def copy_bound(config: ImportBenchConfig, batch: Path, *, sealed: bool = False) -> CopyBound:
    """The batch's PDF bytes in one COPY into a bytea table, in a schema of its own
    (``sealed``: hashed and sealed as by the document store, inside the time)."""
    pdfs = sorted(batch.glob("*/*.pdf"))
    schema = f"akte_bench_{uuid4().hex[:12]}"
    table = sql.Identifier(schema, "scan_bytes")
    with config.postgres.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            conn.execute(sql.SQL("CREATE TABLE {} (id integer, data bytea)").format(table))
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN data SET STORAGE EXTERNAL").format(table)
            )
            size = 0
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                statement = sql.SQL("COPY {} (id, data) FROM STDIN (FORMAT BINARY)").format(table)
                with cursor.copy(statement) as copy:
                    copy.set_types(["int4", "bytea"])
                    for number, pdf in enumerate(pdfs):
                        data = pdf.read_bytes()
                        size += len(data)
                        copy.write_row((number, sealed_like_the_store(data) if sealed else data))
            seconds = time.perf_counter() - started
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return CopyBound(megabytes=size / 1_000_000, seconds=seconds, sealed=sealed)


def run(config: ImportBenchConfig) -> ImportBenchReport:
    server, problem = (None, None)
    stores = config.stores
    notes = []
    if "postgres" in stores:
        server, problem = postgres_server_version(config.postgres)
        if problem is not None:
            stores = tuple(store for store in stores if store != "postgres")
            notes.append(f"PostgreSQL rows SKIPPED: {problem}")
    with tempfile.TemporaryDirectory(prefix="akte-bench-import-", dir=config.tmp_root) as tmp:
        batch = Path(tmp) / "batch"
        _progress(config, f"writing {config.folders:,} legacy files ...")
        folders = write_legacy_batch(
            batch, config.folders, seed=config.seed, payload_bytes_per_page=config.page_kb * 1024
        )
        report = ImportBenchReport(
            parameters={
                "folders": config.folders,
                "page_kb": config.page_kb,
                "stores": list(stores),
                "group_events": list(config.group_events),
                "repeats": config.repeats,
                "seed": config.seed,
            },
            machine=asdict(machine_info(server)),
            batch={
                "folders": len(folders),
                "documents": sum(folder.documents for folder in folders),
                "pages": sum(folder.pages for folder in folders),
                "megabytes": round(sum(folder.size_bytes for folder in folders) / 1_000_000, 1),
            },
            notes=notes,
        )
        for repeat in range(config.repeats):
            for store in stores:  # interleaved, so that machine noise hits both alike
                for group in config.group_events:
                    _progress(
                        config,
                        f"import {repeat + 1}/{config.repeats} on {store}, "
                        f"{group} events per transaction ...",
                    )
                    report.runs.append(_one_run(store, group, config, batch))
                if store == "postgres" and config.copy_bound:
                    _progress(config, f"plain COPY {repeat + 1}/{config.repeats} ...")
                    report.bounds.append(copy_bound(config, batch))
                    _progress(config, f"hashed, sealed and COPY {repeat + 1}/{config.repeats} ...")
                    report.bounds.append(copy_bound(config, batch, sealed=True))
    return report


def _median_spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):>10,.1f}  ({min(values):,.1f}..{max(values):,.1f})"


def format_report(report: ImportBenchReport) -> str:
    machine = report.machine
    batch = report.batch
    lines = [
        "Akte scan import benchmark",
        f"machine: {machine['cpu_model']}, {machine['nproc']} CPUs; {machine['python']}",
        f"batch: {batch['folders']:,} legacy files, {batch['documents']:,} PDFs, "
        f"{batch['pages']:,} pages, {batch['megabytes']:,} MB "
        f"({report.parameters['page_kb']} KB per page)",
        "figures: median (min..max) over the repeats",
    ]
    groups = report.parameters.get("group_events", [1])
    for store, group in ((s, g) for s in report.parameters["stores"] for g in groups):
        runs = [run for run in report.runs if run.store == store and run.group_events == group]
        if not runs:
            continue
        rows = [
            ("import time, s", [r.seconds for r in runs]),
            ("legacy files/s", [r.folders_per_second for r in runs]),
            ("PDFs/s", [r.documents_per_second for r in runs]),
            ("pages/s", [r.pages_per_second for r in runs]),
            ("MB/s", [r.megabytes_per_second for r in runs]),
            ("re-run, nothing new: files/s", [r.rerun_folders_per_second for r in runs]),
            ("CPU time of the importer, s", [r.cpu_seconds for r in runs]),
        ]
        writing = "one transaction per legacy file" if group == 1 else f"groups of {group} events"
        lines += ["", f"{store}, {writing} (n={len(runs)})"]
        lines += [f"  {label:<30}{_median_spread(values)}" for label, values in rows]
    for store in report.parameters["stores"]:
        by_group = {
            group: statistics.median(
                run.seconds
                for run in report.runs
                if run.store == store and run.group_events == group
            )
            for group in groups
            if any(run.store == store and run.group_events == group for run in report.runs)
        }
        if 1 in by_group:
            # Every grouped size beside one transaction per legacy file (not only the
            # fastest: at small sizes the ungrouped run may win by chance).
            lines += [
                f"{store}: grouped ({group} events) is {by_group[1] / seconds:.2f}x "
                "as fast as one transaction per legacy file"
                for group, seconds in by_group.items()
                if group != 1
            ]
    for sealed, what, short in (
        (False, "plain COPY of the same PDF bytes", "the bytes alone"),
        (True, "the same PDF bytes hashed twice, sealed (AES-GCM) and COPY", "the sealed bytes"),
    ):
        bounds = [b for b in report.bounds if b.sealed == sealed]
        if bounds:
            lines += _bound_lines(report, groups, bounds, what, short)
    lines += [f"NOTE: {note}" for note in report.notes]
    return "\n".join(lines)


def _bound_lines(
    report: ImportBenchReport,
    groups: Sequence[int],
    bounds: Sequence[CopyBound],
    what: str,
    short: str,
) -> list[str]:
    bound = statistics.median(b.seconds for b in bounds)
    lines = [
        "",
        f"postgres, {what}, one transaction (n={len(bounds)})",
        f"  {'time, s':<30}{_median_spread([b.seconds for b in bounds])}",
        f"  {'MB/s':<30}{_median_spread([b.megabytes_per_second for b in bounds])}",
    ]
    one_by_one = [r.seconds for r in report.runs if r.store == "postgres" and r.group_events == 1]
    if one_by_one:
        most = statistics.median(one_by_one) / bound
        lines.append(
            f"postgres: {short} allow at most {most:.2f}x over one transaction per legacy file"
        )
    for group in groups:
        if group == 1:
            continue
        grouped = [
            r.seconds for r in report.runs if r.store == "postgres" and r.group_events == group
        ]
        if grouped:
            share = statistics.median(grouped) / bound
            lines.append(
                f"postgres: grouped ({group} events) takes {share:.2f}x the time of {short}"
            )
    return lines


def _group_sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(dict.fromkeys(positive_int(part) for part in text.split(",") if part))
    if not sizes:
        msg = "name at least one number of events per transaction"
        raise argparse.ArgumentTypeError(msg)
    return sizes


def parse_args(argv: Sequence[str] | None = None) -> tuple[ImportBenchConfig, Path | None]:
    parser = argparse.ArgumentParser(
        prog="bin/bench-import", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    defaults = ImportBenchConfig()
    parser.add_argument("--folders", type=positive_int, default=defaults.folders)
    parser.add_argument(
        "--page-kb", type=int, default=defaults.page_kb, help="KB per scanned page (default 30)"
    )
    parser.add_argument("--stores", type=store_names, default=defaults.stores)
    parser.add_argument(
        "--group-events",
        type=_group_sizes,
        default=defaults.group_events,
        help="events per transaction, comma-separated; 1: one per legacy file (default 1,5000)",
    )
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats)
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where batch and stores go")
    add_postgres_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--no-copy-bound",
        action="store_true",
        help="skip the plain COPY of the same bytes (PostgreSQL's bound)",
    )
    args = parser.parse_args(argv)
    return (
        ImportBenchConfig(
            folders=args.folders,
            page_kb=max(args.page_kb, 0),
            stores=tuple(store for store in STORES if store in args.stores),  # in STORES order
            group_events=args.group_events,
            repeats=args.repeats,
            postgres=postgres_from(args),
            tmp_root=args.tmp_dir,
            progress=not args.quiet,
            copy_bound=not args.no_copy_bound,
        ),
        args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    config, json_out = parse_args(argv)
    report = run(config)
    print(format_report(report))
    if json_out is not None:
        write_json(json_out, report.to_json())
        print(f"\nwritten: {json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
