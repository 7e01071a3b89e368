"""The restore drill: restore a backup into a scratch place and check what came back.

Scratch place: a temporary directory (SQLite, documents in a directory) or a scratch
schema next to the settings' one (PostgreSQL), removed afterwards. Checks: the manifest's
checksums; the hash chains intact and through the manifest's head; every event readable
(every key an event needs is there); no key of an erased person left (after the restore
completed such erasures, reported as a finding); every referenced document present and
matching its hash; the read models rebuilt from the restored log equal to those restored
and caught up (when the backup holds them).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from psycopg import sql

from adapters.backup.manifest import Manifest, read_manifest, verify_files
from adapters.backup.restore import erased_with_keys, journal_entries, restore_backup
from adapters.backup.stores import Progress, connect, no_progress, schema_of
from adapters.bootstrap import open_service, open_views_store
from adapters.documents.encryption import DocumentErased
from adapters.documents.store import DocumentCorrupted, DocumentNotStored
from adapters.personal_data.key_store import DataKeyMissing
from adapters.settings import Settings
from adapters.store.hash_chain import Anchor, ChainSource, verify_chains
from adapters.views.runner import ApplicationEventLog, lock_projections
from projections.engine import ProjectionEngine
from projections.read_models import READ_MODELS
from projections.storage import ViewsStore
from service import AkteService

_SCAN_PAGE: Final = 1000
_MAX_IDENTIFIER: Final = 63


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DrillReport:
    manifest: Manifest
    checks: list[Check] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    """What does not fail the drill but the office must know."""

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def run_drill(
    settings: Settings,
    source: Path,
    *,
    scratch_root: Path | None = None,
    progress: Progress = no_progress,
) -> DrillReport:
    """Restore ``source`` into a scratch place beside the store of ``settings`` (its
    PostgreSQL server and master keys) and check it. Raises :class:`BackupCorrupted`
    before restoring anything when a file does not match the manifest."""
    manifest = read_manifest(source)
    verify_files(source, manifest, lambda done, total: progress("checksums", done, total))
    report = DrillReport(manifest)
    report.add("checksums", True, f"{len(manifest.files):,} files match the manifest")
    with _scratch(settings, scratch_root) as scratch:
        restored = restore_backup(
            scratch,
            source,
            progress=progress,
            checked=manifest,
            journals=[settings.erasure_journal_file],
        )
        if restored.erased_with_keys:
            report.findings.append(
                f"the backup holds keys of {len(restored.erased_with_keys)} erased case "
                f"file(s) ({', '.join(restored.erased_with_keys)}); the restore destroyed "
                f"{restored.keys_destroyed} of them again"
            )
        with open_service(scratch) as service:
            _check_chain(report, service, manifest)
            _check_events(report, service, progress)
            journal = journal_entries(scratch)
            keys = service.data_protection.keys
            alive = sorted(
                {e.case_id for e in journal if any(keys.has_key(o) for o in e.owner_ids)}
            )
            report.add(
                "erasure journal",
                not alive,
                f"{len(journal)} erasure(s) of the journal applied"
                if not alive
                else f"{len(alive)} case file(s) of the journal still have keys",
            )
            left = erased_with_keys(service)
            report.add(
                "erasures",
                not left,
                "no key of an erased person"
                if not left
                else f"{len(left)} erased case file(s) still have keys",
            )
            _check_documents(report, service, progress)
            _check_views(report, scratch, service, manifest, progress)
    return report


# -------------------------------------------------------------- scratch place


@contextmanager
def _scratch(settings: Settings, root: Path | None) -> Iterator[Settings]:
    directory = Path(tempfile.mkdtemp(prefix="akte-drill-", dir=root))
    update: dict[str, object] = {
        "data_dir": directory,
        "documents_dir": directory / "documents",
        "key_store_path": None,
        "mailbox_dir": directory / "mailbox",
        # The drill reads the store's journal; its own copy goes with the scratch place.
        "erasure_journal_path": directory / "erasure-journal.jsonl",
    }
    schema = None
    if settings.store == "postgres":
        schema = f"{schema_of(settings)[:40]}_drill_{uuid.uuid4().hex[:12]}"[:_MAX_IDENTIFIER]
        update["postgres_schema"] = schema
        with connect(settings, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield settings.model_copy(update=update)
    finally:
        if schema is not None:
            with connect(settings, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------- checks


def _check_chain(report: DrillReport, service: AkteService, manifest: Manifest) -> None:
    source: ChainSource = service.recorder  # type: ignore[assignment]
    anchors = [Anchor.parse(manifest.head_anchor)] if manifest.head_anchor else []
    verified = verify_chains(source, anchors=anchors)
    ok = verified.ok and verified.head_notification_id == manifest.head
    report.add(
        "audit verify",
        ok,
        f"{verified.events:,} events, head {verified.head}"
        + ("" if verified.ok else f", BROKEN: {verified.first}")
        + (
            ""
            if verified.head_notification_id == manifest.head
            else f", manifest head {manifest.head}"
        ),
    )


def _check_events(report: DrillReport, service: AkteService, progress: Progress) -> None:
    """Every event decodes, its personal fields with its owner's key (or redacted)."""
    head = service.recorder.max_notification_id() or 0
    position = decoded = 0
    missing: set[str] = set()
    while True:
        notifications = service.recorder.select_notifications(
            start=position, limit=_SCAN_PAGE, inclusive_of_start=False
        )
        for notification in notifications:
            try:
                service.mapper.to_domain_event(notification)
            except DataKeyMissing:
                missing.add(str(notification.originator_id))
            decoded += 1
        progress("events", min(decoded, head), max(head, 1))
        if len(notifications) < _SCAN_PAGE:
            break
        position = notifications[-1].id
    expected = report.manifest.counts.get("events", 0)
    report.add(
        "keys",
        not missing and decoded == expected,
        f"{decoded:,} events read (manifest: {expected:,}); "
        + ("every key present" if not missing else f"{len(missing)} owner(s) without a key"),
    )


def _check_documents(report: DrillReport, service: AkteService, progress: Progress) -> None:
    documents = service.intake.documents
    references = service.intake.referenced_documents()
    checked = erased = 0
    missing: list[str] = []
    corrupted: list[str] = []
    for done, reference in enumerate(references, start=1):
        try:
            documents.verify(
                reference.sha256, owner=reference.owner, size_bytes=reference.size_bytes
            )
            checked += 1
        except DocumentErased:
            erased += 1
        except DocumentNotStored:
            missing.append(reference.sha256)
        except DocumentCorrupted:
            corrupted.append(reference.sha256)
        progress("documents", done, len(references))
    report.add(
        "documents",
        not missing and not corrupted,
        f"{checked:,} documents match their hashes, {erased:,} erased with their owners, "
        f"{len(missing):,} missing, {len(corrupted):,} corrupted",
    )


def _check_views(
    report: DrillReport,
    scratch: Settings,
    service: AkteService,
    manifest: Manifest,
    progress: Progress,
) -> None:
    views = open_views_store(scratch)
    writer = views.writer()
    try:
        lock_projections(writer, [p.name for p in READ_MODELS], 10.0)
        engine = ProjectionEngine(ApplicationEventLog(service), writer, READ_MODELS)
        caught_up = None
        if manifest.with_views:
            engine.catch_up(progress=lambda p: progress("views catch-up", p.done, p.total))
            caught_up = views_digest(views)
        engine.rebuild(progress=lambda p: progress("views rebuild", p.done, p.total))
        rebuilt = views_digest(views)
    finally:
        writer.close()
        views.close()
    if caught_up is None:
        report.add("views", True, f"{len(rebuilt)} read models rebuilt (none in the backup)")
        return
    differ = sorted(name for name in rebuilt if caught_up.get(name) != rebuilt[name])
    report.add(
        "views",
        not differ,
        f"{len(rebuilt)} read models rebuilt equal to the backup's caught up"
        if not differ
        else f"rebuilt read models differ from the backup's: {', '.join(differ)}",
    )


def views_digest(views: ViewsStore) -> dict[str, str]:
    """Per read model, a hash of its tables' rows (in no particular order)."""
    digests: dict[str, str] = {}
    with views.reader() as session:
        for projection in READ_MODELS:
            digest = hashlib.sha256()
            for schema in projection.schemas:
                if not session.table_exists(schema.name):
                    continue
                rows = session.fetch(f"SELECT * FROM {session.table(schema.name)}")
                for line in sorted(repr(row) for row in rows):
                    digest.update(line.encode())
            digests[projection.name] = digest.hexdigest()
    return digests
