"""Import scanned legacy paper files into the digital case files (``akte import-scans``).

A batch is a directory with one folder per legacy file. Each folder holds the scans (PDF)
and a ``manifest.json``::

    {
      "file_number": "ALT-1998-000123",
      "person": {"surname": "...", "given_names": "...", "date_of_birth": "1970-01-31",
                 "nationality": "TUR", "passport_number": "U1234567", "address": null},
      "documents": [{"file": "teil-01.pdf", "pages": 5, "kind": "legacy-file-scan"}, ...]
    }

Each folder's scans are filed on the case file with that file number in the office,
which is opened from the manifest's person data if the office has none yet (file numbers
are unique per office, so two runs cannot open it twice). The scans become documents
with source ``scan``; the files are stored first, then the folder's events are saved in
one transaction.

**Resumable.** Filing skips scans already on the case file (same sha256), so an
interrupted import is simply started again: folders done are passed over, a folder whose
files were stored but not recorded is completed, and a second run imports nothing new.

**Written in groups.** The folders' commands run as a group of the service
(:meth:`service.AkteService.grouped`): their events are written together, some thousand
at a time, instead of one commit per folder, which on PostgreSQL is most of what an
event costs. The scans too are written in a batch of the document store
(:meth:`adapters.documents.store.DocumentStore.writing_together`): many PDFs per
transaction (or, for the directory, per round of fsyncs) instead of one each, committed
strictly before the events of the same folders, every :data:`MAX_PENDING_BYTES` and
whenever the group writes. Each folder's scans are a unit of the batch: a folder that
fails keeps none of them, and neither events nor scans of it are written; the folders
before it are. Should a group conflict with another writer
(:class:`service_unit_of_work.GroupConflict`), its scans are removed again and the import
stops; running it again completes it. ``group_events=1`` writes each folder on its own
and each scan in a transaction of its own, as before.

**Checked ahead.** While a folder is filed, a thread reads and checks the next ones
(:data:`CHECKED_AHEAD`: the manifest, each scan hashed and its pages counted by the
page-counting process), which wait on the disk and that process rather than on the
database. Checking writes nothing; folders are filed strictly in order, and whatever a
check raises stops the import at its folder, as if it had been checked there.

**Failures** are reported per folder and the import goes on: a malformed manifest, a
missing file, a file that is not a readable PDF, a page count that differs from the
manifest's, or a case file that refuses the scans (closed). The report names folders by
file number (or, where the manifest cannot be read, by their position in the batch) and
documents by their position in the manifest: never names, birth dates or file names,
which may be personal data. A store that cannot be reached stops the import instead.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

from adapters.documents.inspection import PDF, UnacceptableFile, inspect_path
from adapters.documents.store import DocumentBatch
from domain.case_file import MAX_PAGES, MasterData, check_reference, require_code
from domain.errors import DomainError, InvalidValue
from domain.values import SCANNED_LEGACY_FILE_KIND, require_file_name
from service import AkteService
from service_intake import SCAN_IMPORT_USER, IncomingDocument
from service_unit_of_work import DEFAULT_GROUP_EVENTS

MANIFEST_NAME: Final = "manifest.json"
MAX_MANIFEST_BYTES: Final = 1_048_576
"""A manifest lists some hundred files at most; anything larger is not a manifest."""
MAX_PENDING_BYTES: Final = 128 * 1_048_576
"""Scan bytes held in a batch of the document store before it commits (after a whole
legacy file): few commits, and a bounded amount to write again after a crash."""
CHECKED_AHEAD: Final = 2
"""Legacy files read and checked (manifest, scans hashed, pages counted by the worker
process) in a thread while the one before them is filed: checking waits mostly on the
disk and on the page-counting process, filing on the database, so the two overlap.
Checking writes nothing, so an interruption loses none of it."""

FailureReason = Literal[
    "malformed-manifest", "missing-file", "unreadable-pdf", "page-count-mismatch", "refused"
]
FolderStatus = Literal["imported", "already-imported", "failed"]


class FolderFailed(Exception):
    """A legacy file that cannot be imported; the detail names no person."""

    def __init__(self, reason: FailureReason, detail: str, file_number: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.file_number = file_number
        """Set once the manifest's file number has been read: the report names it."""


@dataclass(frozen=True)
class ManifestDocument:
    position: int
    """1-based position in the manifest: how the report names the document."""
    path: Path
    pages: int
    kind: str


@dataclass(frozen=True)
class Manifest:
    file_number: str
    master_data: MasterData
    documents: list[ManifestDocument]


@dataclass(frozen=True)
class FolderOutcome:
    label: str
    """The file number, or ``folder #n`` (n-th folder by name) if no file number could be
    read. Folder names are never shown: they may be people's names."""
    status: FolderStatus
    case_opened: bool = False
    documents: int = 0
    """Documents attached now."""
    pages: int = 0
    size_bytes: int = 0
    reason: FailureReason | None = None
    detail: str | None = None


@dataclass(frozen=True)
class ImportProgress:
    done: int
    total: int
    documents: int
    size_bytes: int
    failed: int
    seconds: float


@dataclass
class ImportReport:
    folders: int = 0
    imported: int = 0
    already_imported: int = 0
    cases_opened: int = 0
    documents: int = 0
    pages: int = 0
    size_bytes: int = 0
    seconds: float = 0.0
    failures: list[FolderOutcome] = field(default_factory=list)

    @property
    def folders_per_second(self) -> float:
        return self.folders / self.seconds if self.seconds else 0.0

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.size_bytes / 1_000_000 / self.seconds if self.seconds else 0.0

    def add(self, outcome: FolderOutcome) -> None:
        self.folders += 1
        if outcome.status == "failed":
            self.failures.append(outcome)
            return
        if outcome.status == "already-imported":
            self.already_imported += 1
            return
        self.imported += 1
        self.cases_opened += outcome.case_opened
        self.documents += outcome.documents
        self.pages += outcome.pages
        self.size_bytes += outcome.size_bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "folders": self.folders,
            "imported": self.imported,
            "already_imported": self.already_imported,
            "failed": len(self.failures),
            "cases_opened": self.cases_opened,
            "documents": self.documents,
            "pages": self.pages,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 3),
            "folders_per_second": round(self.folders_per_second, 1),
            "documents_per_second": round(self.documents_per_second, 1),
            "megabytes_per_second": round(self.megabytes_per_second, 2),
            "failures": [
                {"folder": failure.label, "reason": failure.reason, "detail": failure.detail}
                for failure in self.failures
            ],
        }


def legacy_folders(directory: Path) -> list[Path]:
    """The batch's folders in name order: the order of import, and of ``folder #n``."""
    return sorted(path for path in directory.iterdir() if path.is_dir())


def import_scans(
    service: AkteService,
    directory: Path,
    *,
    office_id: str,
    by: str = SCAN_IMPORT_USER,
    progress: Callable[[ImportProgress], None] | None = None,
    after_folder: Callable[[FolderOutcome], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    group_events: int = DEFAULT_GROUP_EVENTS,
) -> ImportReport:
    """Import every legacy file of the batch in ``directory``; see the module docstring.

    ``progress`` is called after each folder; ``after_folder`` too, with its outcome (an
    exception it raises stops the import there, as an interruption would; the folders
    before it are written). ``group_events``: events written per transaction (1: one
    transaction per folder).
    """
    folders = legacy_folders(directory)
    report = ImportReport()
    started = clock()
    with _written_together(service, group_events) as batch:
        _import_folders(
            service, folders, report, office_id, by, progress, after_folder, clock, started, batch
        )
    report.seconds = clock() - started
    return report


@contextmanager
def _written_together(service: AkteService, group_events: int) -> Iterator[DocumentBatch | None]:
    """The group of commands and, around it, the batch of the document store joined to
    it (its scans committed before each write of the group's events); nothing of either
    for ``group_events=1``. The batch is the outer block: the group writes its last
    events when it ends, after committing the batch, and only then does the batch end."""
    if group_events <= 1:
        yield None
        return
    if service.command_group() is not None:
        # Inside a group the caller opened: it writes the events when it ends, after
        # this block; the scans are then stored one at a time, before it, as alone.
        with service.grouped(max_events=group_events):
            yield None
        return
    together = getattr(service.intake.documents, "writing_together", None)
    with (
        together() if together is not None else nullcontext() as batch,
        service.grouped(max_events=group_events) as group,
    ):
        if batch is not None:
            group.write_first(batch)
        yield batch


def _import_folders(
    service: AkteService,
    folders: list[Path],
    report: ImportReport,
    office_id: str,
    by: str,
    progress: Callable[[ImportProgress], None] | None,
    after_folder: Callable[[FolderOutcome], None] | None,
    clock: Callable[[], float],
    started: float,
    batch: DocumentBatch | None,
) -> None:
    """Each folder filed in order, the next :data:`CHECKED_AHEAD` checked meanwhile."""
    checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="akte-scan-check")
    ahead: deque[Future[CheckedFolder]] = deque()
    upcoming = enumerate(folders, start=1)

    def check_next() -> None:
        for ordinal, folder in upcoming:
            ahead.append(checker.submit(check_folder, folder, ordinal=ordinal))
            return

    try:
        for _ in range(CHECKED_AHEAD + 1):
            check_next()
        for ordinal, folder in enumerate(folders, start=1):
            checked = ahead.popleft().result()  # what the check raised, it raises here
            check_next()
            if batch is None:
                outcome = import_folder(
                    service, folder, ordinal=ordinal, office_id=office_id, by=by, checked=checked
                )
            else:
                outcome = _import_folder_in_unit(
                    service, folder, ordinal, office_id, by, batch, checked
                )
            report.add(outcome)
            report.seconds = clock() - started
            if progress is not None:
                progress(
                    ImportProgress(
                        done=ordinal,
                        total=len(folders),
                        documents=report.documents,
                        size_bytes=report.size_bytes,
                        failed=len(report.failures),
                        seconds=report.seconds,
                    )
                )
            if after_folder is not None:
                after_folder(outcome)
    finally:
        # Checks not started yet are dropped; the one running (one folder) ends first.
        checker.shutdown(wait=True, cancel_futures=True)


class _FolderUndone(Exception):
    def __init__(self, outcome: FolderOutcome) -> None:
        super().__init__(outcome.label)
        self.outcome = outcome


def _import_folder_in_unit(
    service: AkteService,
    folder: Path,
    ordinal: int,
    office_id: str,
    by: str,
    batch: DocumentBatch,
    checked: CheckedFolder,
) -> FolderOutcome:
    """One legacy file as a unit of the document batch: if it fails or is interrupted,
    none of its scans stay in the batch."""
    try:
        with batch.unit():
            outcome = import_folder(
                service, folder, ordinal=ordinal, office_id=office_id, by=by, checked=checked
            )
            if outcome.status == "failed":
                raise _FolderUndone(outcome)
    except _FolderUndone as undone:
        return undone.outcome
    batch.pending_units += 1
    full = batch.max_units is not None and batch.pending_units >= batch.max_units
    if full or batch.pending_bytes >= MAX_PENDING_BYTES:
        batch.commit()  # before the events that will refer to them: always safe
    return outcome


@dataclass(frozen=True)
class CheckedFolder:
    """A legacy file read and its scans checked by their bytes: what filing it needs, or
    the outcome of a folder that failed its checks. Nothing is written to check it."""

    label: str
    manifest: Manifest | None
    scans: list[IncomingDocument]
    failed: FolderOutcome | None = None


def check_folder(folder: Path, *, ordinal: int) -> CheckedFolder:
    """Read the folder's manifest and check each scan (there, a readable PDF, with the
    manifest's pages); failures come back as the folder's outcome."""
    label = f"folder #{ordinal}"
    try:
        manifest = read_manifest(folder)
        label = manifest.file_number
        scans = list(_checked_scans(manifest))
    except FolderFailed as failure:
        outcome = FolderOutcome(
            failure.file_number or label, "failed", reason=failure.reason, detail=failure.detail
        )
        return CheckedFolder(label, None, [], outcome)
    return CheckedFolder(label, manifest, scans)


def import_folder(
    service: AkteService,
    folder: Path,
    *,
    ordinal: int,
    office_id: str,
    by: str,
    checked: CheckedFolder | None = None,
) -> FolderOutcome:
    """Import one legacy file (``checked``: its checks, where they ran ahead); failures
    come back as an outcome, store outages raise."""
    if checked is None:
        checked = check_folder(folder, ordinal=ordinal)
    if checked.failed is not None:
        return checked.failed
    label, manifest, scans = checked.label, checked.manifest, checked.scans
    assert manifest is not None  # checked, not failed
    try:
        filed = service.intake.file_scanned_documents(
            office_id=office_id,
            reference=manifest.file_number,
            master_data=manifest.master_data,
            documents=scans,
            by=by,
        )
    except InvalidValue as invalid:
        # The case file's own rules found the manifest's data wanting (a nationality that
        # is no ISO code, ...): the message names the field, never the value.
        return FolderOutcome(label, "failed", reason="malformed-manifest", detail=invalid.message)
    except DomainError as refused:
        # E.g. the case file with this number is closed: the message names the rule.
        return FolderOutcome(label, "failed", reason="refused", detail=refused.message)
    if not filed.document_numbers:
        return FolderOutcome(label, "already-imported")
    by_hash = {scan.sha256: scan for scan in scans}
    attached = [by_hash[sha256] for sha256 in filed.attached_sha256]
    return FolderOutcome(
        label,
        "imported",
        case_opened=filed.opened,
        documents=len(attached),
        pages=sum(scan.page_count for scan in attached),
        size_bytes=sum(scan.size_bytes for scan in attached),
    )


def read_manifest(folder: Path) -> Manifest:
    """The folder's manifest, checked; raises :class:`FolderFailed` naming what is wrong."""
    path = folder / MANIFEST_NAME
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise _malformed(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes")
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise _malformed(f"{MANIFEST_NAME} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _malformed(f"{MANIFEST_NAME} is not valid JSON") from None
    if not isinstance(data, dict):
        raise _malformed("the manifest is not a JSON object")
    file_number = data.get("file_number")
    if not isinstance(file_number, str):
        raise _malformed("file_number is missing or not a string")
    try:
        check_reference(file_number)
    except InvalidValue as error:
        raise _malformed(error.message) from None
    try:
        master_data = _master_data(data.get("person"))
        documents = _manifest_documents(folder, data.get("documents"))
    except InvalidValue as error:
        raise FolderFailed("malformed-manifest", error.message, file_number) from None
    return Manifest(file_number, master_data, documents)


def _malformed(detail: str) -> FolderFailed:
    return FolderFailed("malformed-manifest", detail)


def _master_data(person: object) -> MasterData:
    if not isinstance(person, dict):
        raise InvalidValue("person", "is missing or not an object")
    for name in ("surname", "given_names", "date_of_birth", "nationality", "passport_number"):
        if not isinstance(person.get(name), str):
            raise InvalidValue(f"person.{name}", "is missing or not a string")
    address = person.get("address")
    if address is not None and not isinstance(address, str):
        raise InvalidValue("person.address", "is not a string")
    try:
        born = date.fromisoformat(person["date_of_birth"])
    except ValueError:
        raise InvalidValue("person.date_of_birth", "is not a date (YYYY-MM-DD)") from None
    # The case file's own rules (names, nationality, passport number, birth date) are
    # checked when it is opened, and reported as refusals naming the field.
    return MasterData(
        surname=person["surname"],
        given_names=person["given_names"],
        date_of_birth=born,
        nationality=person["nationality"],
        passport_number=person["passport_number"],
        address=address,
    )


def _manifest_documents(folder: Path, listed: object) -> list[ManifestDocument]:
    if not isinstance(listed, list) or not listed:
        raise InvalidValue("documents", "must list at least one scan")
    documents = []
    for position, item in enumerate(listed, start=1):
        where = f"documents.{position}"
        if not isinstance(item, dict):
            raise InvalidValue(where, "is not an object")
        name, pages, kind = item.get("file"), item.get("pages"), item.get("kind")
        if not isinstance(name, str):
            raise InvalidValue(f"{where}.file", "is missing or not a string")
        require_file_name(f"{where}.file", name)  # no paths: the scan lies in the folder
        if isinstance(pages, bool) or not isinstance(pages, int) or not 1 <= pages <= MAX_PAGES:
            raise InvalidValue(f"{where}.pages", f"must be a whole number from 1 to {MAX_PAGES}")
        if kind is None:
            kind = SCANNED_LEGACY_FILE_KIND
        if not isinstance(kind, str):
            raise InvalidValue(f"{where}.kind", "is not a string")
        require_code(f"{where}.kind", kind)
        documents.append(ManifestDocument(position, folder / name, pages, kind))
    return documents


def _checked_scans(manifest: Manifest) -> Iterator[IncomingDocument]:
    """Each scan checked by its bytes: there, a readable PDF, with the manifest's pages."""
    for document in manifest.documents:
        where = f"document {document.position} of the manifest"
        if document.path.is_symlink() or not document.path.is_file():
            raise FolderFailed("missing-file", f"{where}: the file is missing")
        try:
            inspection = inspect_path(document.path)
        except UnacceptableFile as refused:
            raise FolderFailed("unreadable-pdf", f"{where}: {refused}") from None
        except OSError as error:
            raise FolderFailed(
                "missing-file", f"{where}: cannot be read ({error.strerror})"
            ) from None
        if inspection.media_type != PDF:
            raise FolderFailed("unreadable-pdf", f"{where}: not a PDF by its content")
        if inspection.page_count != document.pages:
            raise FolderFailed(
                "page-count-mismatch",
                f"{where}: the manifest says {document.pages} pages, the PDF has "
                f"{inspection.page_count}",
            )
        yield IncomingDocument(
            content=document.path,
            sha256=inspection.sha256,
            size_bytes=inspection.size_bytes,
            media_type=inspection.media_type,
            page_count=inspection.page_count,
            kind=document.kind,
        )


def report_lines(report: ImportReport) -> Iterator[str]:
    """The report for people: totals, throughput, then each failure on a line."""
    yield (
        f"{report.folders:,} legacy files: {report.imported:,} imported "
        f"({report.cases_opened:,} case files opened), {report.already_imported:,} already "
        f"imported, {len(report.failures):,} failed"
    )
    yield (
        f"{report.documents:,} documents, {report.pages:,} pages, "
        f"{report.size_bytes / 1_000_000:,.1f} MB in {report.seconds:,.1f} s: "
        f"{report.folders_per_second:,.1f} files/s, {report.documents_per_second:,.1f} "
        f"documents/s, {report.megabytes_per_second:,.2f} MB/s"
    )
    for failure in report.failures:
        yield f"FAILED {failure.label}: {failure.reason}: {failure.detail}"


__all__ = [
    "MANIFEST_NAME",
    "CheckedFolder",
    "FolderOutcome",
    "ImportProgress",
    "ImportReport",
    "check_folder",
    "import_folder",
    "import_scans",
    "legacy_folders",
    "read_manifest",
    "report_lines",
]
