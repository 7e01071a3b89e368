"""The scan import written in groups of commands records what it records one legacy file
per transaction: the same case files, events and hash chain, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from uuid import UUID

from adapters.documents.scan_import import import_scans
from adapters.simulation.legacy_scans import LegacyFolder, make_pdf, write_legacy_batch
from adapters.store.hash_chain import ChainSource, verify_chains
from service import AkteService
from service_common import ReferenceNotFound

ONE_BY_ONE: Final = "abh-einzeln"
GROUPED: Final = "abh-gruppe"


def office_log(service: AkteService, office_id: str, folders: list[LegacyFolder]) -> list[Any]:
    """Per legacy file: its case file's events (kind, version, documents' facts), and the
    claim of its file number; ids and times left out (they differ between offices)."""
    log: list[tuple[str, list[Any] | None]] = []
    for folder in folders:
        try:
            case_id = service.find_case_by_reference(office_id, folder.file_number)
        except ReferenceNotFound:  # the folder failed: no case file
            log.append((folder.file_number, None))
            continue
        events = [
            (
                type(event).__qualname__,
                event.originator_version,
                {
                    key: value
                    for key, value in sorted(vars(event).items())
                    if not isinstance(value, UUID)
                    and key not in {"timestamp", "at", "office_id", "originator_id"}
                },
            )
            for event in service.case_events(case_id)
        ]
        log.append((folder.file_number, events))
    return log


def test_grouped_import_records_what_one_by_one_records(
    service: AkteService, tmp_path: Path
) -> None:
    batch = tmp_path / "batch"
    folders = write_legacy_batch(batch, 24, seed=8, payload_bytes_per_page=64)
    broken = folders[9].path / "teil-01.pdf"
    broken.write_bytes(make_pdf(2)[:-300])  # this folder fails; the ones around it import

    one_by_one = import_scans(service, batch, office_id=ONE_BY_ONE, group_events=1)
    grouped = import_scans(service, batch, office_id=GROUPED, group_events=10)
    again = import_scans(service, batch, office_id=GROUPED, group_events=10)

    for report in (one_by_one, grouped):
        assert (report.imported, len(report.failures)) == (23, 1)
    assert (again.imported, again.already_imported) == (0, 23)
    assert grouped.documents == one_by_one.documents
    expected = office_log(service, ONE_BY_ONE, folders)
    assert expected[9] == (folders[9].file_number, None)
    assert office_log(service, GROUPED, folders) == expected
    source: ChainSource = service.recorder  # type: ignore[assignment]
    chain = verify_chains(source)
    assert chain.ok, chain.findings
    assert chain.events == service.recorder.max_notification_id()
